//! The `fargate-doctor` binary; everything lives in the library so that tests
//! can reach it.

fn main() -> std::process::ExitCode {
    fargate_doctor::cli::run()
}
