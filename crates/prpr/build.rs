//! Why this exists: `sqlx::migrate!` embeds `migrations/` at compile time but
//! cannot tell cargo to watch the directory, so a new migration file alone
//! would not rebuild prpr and the binary would ship without it.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
