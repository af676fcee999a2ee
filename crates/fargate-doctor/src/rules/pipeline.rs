//! FD6xx — CodePipeline deploys to ECS.
//!
//! The ECS deploy action reads `imagedefinitions.json` (or its `FileName`)
//! from its input artifact and swaps the image of the container named there.
//! If no build writes that file, or it names a container the service's task
//! definition does not have, the deploy fails ("The AWS ECS container ... does
//! not exist").

use std::collections::HashMap;

use super::{Severity, Sink, key_pos, list};
use crate::model::pipeline::{self, Buildspec};
use crate::model::{Model, Resource};
use crate::resolve::{Res, as_symbol};
use crate::template::Pos;

super::declare_rules! {
    FD601 = (
        "ecs-deploy-input-not-built",
        Error,
        "ECS deploy action's input artifact does not come from a build action"
    );
    FD602 = (
        "buildspec-no-imagedefinitions",
        Error,
        "The build's buildspec does not write or export the ECS action's FileName"
    );
    FD603 = (
        "imagedefinitions-wrong-container",
        Error,
        "Container name written to imagedefinitions.json is not in the service's task definition"
    );
    FD604 = (
        "github-v1-oauth-source",
        Warning,
        "GitHub version 1 source action with OAuthToken"
    );
    FD605 = (
        "ecr-get-login-removed",
        Error,
        "A buildspec runs `aws ecr get-login`, which AWS CLI v2 removed"
    );
    FD606 = (
        "retired-codebuild-image",
        Warning,
        "A CodeBuild project uses an unsupported pre-2019 curated image (aws/codebuild/docker:*, java:*, python:*, ...)"
    );
    FD607 = (
        "docker-build-not-privileged",
        Error,
        "A buildspec runs docker but the CodeBuild project does not set PrivilegedMode: true"
    );
    FD608 = (
        "codedeploy-ecs-no-image-detail",
        Error,
        "A CodeDeployToECS (blue/green) action's image artifact comes from a build that does not write imageDetail.json"
    );
}

pub fn check(m: &Model<'_>, out: &mut Sink<'_>) {
    for project in m.of_type("AWS::CodeBuild::Project") {
        check_project(m, out, project);
    }
    for p in m.of_type("AWS::CodePipeline::Pipeline") {
        let actions = pipeline::actions(m, p);
        for a in &actions {
            if a.category == "Deploy" && a.provider == "CodeDeployToECS" {
                check_blue_green(m, out, p, a, &actions);
                continue;
            }
            if a.category == "Source"
                && a.provider == "GitHub"
                && let Some((k, _)) = a.config.and_then(|c| c.entry("OAuthToken"))
            {
                {
                    out.report(
                        &FD604,
                        p,
                        k.pos,
                        format!("pipeline {} action {} uses the GitHub version 1 source with an OAuthToken, which AWS no longer recommends", p.id, a.name),
                        "use a CodeStarSourceConnection action (ConnectionArn, FullRepositoryId, BranchName) with an AWS::CodeStarConnections::Connection".into(),
                    );
                }
            }
            if a.category != "Deploy" || a.provider != "ECS" {
                continue;
            }
            let file_name = a
                .config
                .and_then(|c| c.get("FileName"))
                .and_then(|n| m.r.string(n))
                .unwrap_or_else(|| "imagedefinitions.json".into());
            let input_pos = a
                .node
                .entry("InputArtifacts")
                .map(|(k, _)| k.pos)
                .unwrap_or(a.node.pos);
            let Some(input) = a.inputs.first() else {
                out.report(
                    &FD601,
                    p,
                    a.node.pos,
                    format!("pipeline {} ECS deploy action {} has no input artifact; it needs one containing {file_name}", p.id, a.name),
                    "add InputArtifacts with the output artifact of the build action that writes the file".into(),
                );
                continue;
            };
            let Some(producer) = actions.iter().find(|b| b.outputs.contains(input)) else {
                out.report(
                    &FD601,
                    p,
                    input_pos,
                    format!("pipeline {} ECS deploy action {} reads artifact {input}, which no action of the pipeline produces", p.id, a.name),
                    "use the output artifact of the build action that writes the image definitions file".into(),
                );
                continue;
            };
            if producer.category != "Build" {
                out.report(
                    &FD601,
                    p,
                    input_pos,
                    format!(
                        "pipeline {} ECS deploy action {} reads artifact {input} from {} action {}, not from a build; it will not contain {file_name} with the new image",
                        p.id,
                        a.name,
                        producer.category,
                        producer.name
                    ),
                    "feed the ECS action the output artifact of a CodeBuild action that writes the image definitions file".into(),
                );
                continue;
            }
            if producer.provider != "CodeBuild" {
                continue;
            }
            let Some(project) = pipeline::project(m, producer) else {
                continue;
            };
            check_build(m, out, p, a, project, &file_name);
        }
    }
}

fn check_build(
    m: &Model<'_>,
    out: &mut Sink<'_>,
    p: &Resource<'_>,
    a: &pipeline::Action<'_>,
    project: &Resource<'_>,
    file_name: &str,
) {
    let (root, file, line_base, anchor) = match pipeline::buildspec(m, project) {
        Buildspec::Read {
            root,
            file,
            line_base,
            anchor,
        } => (root, file, line_base, anchor),
        Buildspec::Unreadable { why, anchor } => {
            out.note(
                &FD602,
                project,
                anchor,
                format!("{why}; it must write {file_name} and list it under artifacts.files for ECS deploy action {}", a.name),
                format!("pass the buildspec with --buildspec PROJECT=FILE, or make sure it writes {file_name}"),
            );
            return;
        }
        Buildspec::Invalid { message, anchor } => {
            out.report(
                &FD602,
                project,
                anchor,
                format!("the buildspec of project {} is not valid YAML ({message}), so it cannot write {file_name}", project.id),
                "fix the buildspec YAML".into(),
            );
            return;
        }
    };
    let in_template = file == m.template.path;
    let at = |line: usize| -> Pos { buildspec_pos(m, &file, line_base, line) };
    let facts = pipeline::facts(&root, file_name, &pipeline::project_env(m, project));
    if facts.writes.is_empty() {
        out.report_in(
            &FD602,
            Severity::Error,
            project,
            file.clone(),
            if in_template { anchor } else { Pos { line: 1, col: 1 } },
            format!(
                "the buildspec of project {} never writes {file_name}, which ECS deploy action {} of pipeline {} reads",
                project.id, a.name, p.id
            ),
            format!(
                "add a post_build command such as: printf '[{{\"name\":\"CONTAINER\",\"imageUri\":\"%s\"}}]' $IMAGE_URI > {file_name} (or `fargate-doctor imagedefs`), and list it under artifacts.files"
            ),
        );
        return;
    }
    if !facts.exported {
        let pos = facts.artifacts_line.map(at).unwrap_or_else(|| {
            if in_template {
                anchor
            } else {
                Pos { line: 1, col: 1 }
            }
        });
        out.report_in(
            &FD602,
            Severity::Error,
            project,
            file.clone(),
            pos,
            format!(
                "the buildspec of project {} writes {file_name} but does not list it under artifacts.files, so ECS deploy action {} never receives it",
                project.id, a.name
            ),
            format!("add artifacts: {{files: [{file_name}]}} to the buildspec"),
        );
    }
    // FD603: container names against the service's task definition.
    let Some(svc_node) = a.config.and_then(|c| c.get("ServiceName")) else {
        return;
    };
    let svc = match m.r.resolve(svc_node) {
        Res::Resource { id, .. } => m.services().into_iter().find(|s| s.res.id == id),
        _ => m.r.string(svc_node).and_then(|name| {
            m.services().into_iter().find(|s| {
                s.res
                    .prop("ServiceName")
                    .and_then(|n| m.r.string(n))
                    .as_deref()
                    == Some(name.as_str())
            })
        }),
    };
    let Some(td) = svc
        .as_ref()
        .and_then(|s| s.task_def)
        .and_then(|t| m.task_def(t))
    else {
        return;
    };
    let valid = td.container_names();
    let unnamed = td.unnamed();
    // Containers named by a parameter: «parameter X» in rendered text.
    let symbolic: Vec<String> = td
        .containers
        .iter()
        .filter_map(|c| c.name_from.as_ref())
        .filter_map(|f| f.param().map(|p| format!("parameter {p}")))
        .collect();
    let all_names: Vec<String> = td
        .containers
        .iter()
        .map(|c| match (&c.name, &c.name_from) {
            (_, Some(f)) if c.name.is_none() || f.param().is_some() => f.describe(),
            (Some(n), _) => n.clone(),
            _ => "a container without Name".into(),
        })
        .collect();
    for w in &facts.writes {
        for name in &w.names {
            let sym = name.as_ref().ok().and_then(|n| as_symbol(n));
            match (name, sym) {
                (Ok(_), Some(s)) if symbolic.iter().any(|x| x == s) => {}
                (Ok(_), Some(s)) => out.report_in(
                    &FD603,
                    Severity::Note,
                    project,
                    file.clone(),
                    at(w.line),
                    format!(
                        "the buildspec of project {} writes the container name from {s} to {file_name}; it must be the name of a container of task definition {} ({})",
                        project.id,
                        td.res.id,
                        list(&all_names)
                    ),
                    "write the name from the same parameter that names the container".into(),
                ),
                (Ok(n), None) if valid.contains(n) => {}
                (Ok(n), None) if !unnamed.is_empty() || !symbolic.is_empty() => out.report_in(
                    &FD603,
                    Severity::Note,
                    project,
                    file.clone(),
                    at(w.line),
                    format!(
                        "the buildspec of project {} writes container name {n} to {file_name}; the containers of task definition {} are {}, so the deploy must name one of them {n}",
                        project.id,
                        td.res.id,
                        list(&all_names)
                    ),
                    "name the container and the imagedefinitions entry from the same parameter".into(),
                ),
                (Ok(n), None) => out.report_in(
                    &FD603,
                    Severity::Error,
                    project,
                    file.clone(),
                    at(w.line),
                    format!(
                        "the buildspec of project {} writes container name {n} to {file_name}, but task definition {} of the deployed service has only {}; the deploy fails with \"The AWS ECS container {n} does not exist\"",
                        project.id,
                        td.res.id,
                        list(&valid)
                    ),
                    format!("write {}", super::networking::or_list(&valid)),
                ),
                (Err(expr), _) => out.report_in(
                    &FD603,
                    Severity::Note,
                    project,
                    file.clone(),
                    at(w.line),
                    format!(
                        "the buildspec of project {} writes container name {expr} to {file_name}, which is not set in the buildspec env or the project's EnvironmentVariables; it must be {}",
                        project.id,
                        super::networking::or_list(&all_names)
                    ),
                    "define the variable in the project's EnvironmentVariables so it can be checked".into(),
                ),
            }
        }
    }
}

/// Where line `line` of a buildspec read from `file` is, in that file.
fn buildspec_pos(m: &Model<'_>, file: &str, line_base: usize, line: usize) -> Pos {
    let l = line_base + line.saturating_sub(1);
    let text = if file == m.template.path {
        Some(m.template.source.as_str())
    } else {
        m.buildspecs
            .iter()
            .find(|b| b.path == file)
            .map(|b| b.text.as_str())
    };
    let col = text
        .and_then(|t| t.lines().nth(l.saturating_sub(1)))
        .map(|s| s.len() - s.trim_start().len() + 1)
        .unwrap_or(1);
    Pos { line: l, col }
}

/// Curated CodeBuild images from before the 2019 `standard` images. AWS no
/// longer supports them (no updates), but does not delete them, so builds
/// that name one still start.
const RETIRED_IMAGES: &[&str] = &[
    "aws/codebuild/docker:",
    "aws/codebuild/java:",
    "aws/codebuild/python:",
    "aws/codebuild/nodejs:",
    "aws/codebuild/ruby:",
    "aws/codebuild/golang:",
    "aws/codebuild/php:",
    "aws/codebuild/dot-net:",
    "aws/codebuild/ubuntu-base:",
    "aws/codebuild/android-java-",
    "aws/codebuild/eb-",
];

/// What the linter knows about a CodeBuild image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ImageKind {
    /// A pre-2019 curated image (AWS CLI v1, docker run differently).
    Retired,
    /// A current curated image (`standard`, `amazonlinux*`) with AWS CLI v1.
    CuratedCliV1,
    /// A current curated image that ships AWS CLI v2.
    CuratedCliV2,
    /// A custom image, or one the linter does not know.
    Unknown,
}

impl ImageKind {
    fn curated(self) -> bool {
        matches!(self, ImageKind::CuratedCliV1 | ImageKind::CuratedCliV2)
    }
}

/// Classifies an image name. AWS CLI v2 ships in aws/codebuild/standard:5.0
/// and later, amazonlinux2-x86_64-standard:3.0 and later,
/// amazonlinux2-aarch64-standard:2.0 and later, and every
/// amazonlinux-{x86_64,aarch64}-standard (AL2023) image.
fn image_kind(image: &str) -> ImageKind {
    if RETIRED_IMAGES.iter().any(|p| image.starts_with(p)) {
        return ImageKind::Retired;
    }
    let major = |v: &str| -> Option<u32> { v.split('.').next()?.parse().ok() };
    let family = [
        ("aws/codebuild/standard:", 5),
        ("aws/codebuild/amazonlinux2-x86_64-standard:", 3),
        ("aws/codebuild/amazonlinux2-aarch64-standard:", 2),
        ("aws/codebuild/amazonlinux-x86_64-standard:", 0),
        ("aws/codebuild/amazonlinux-aarch64-standard:", 0),
    ];
    for (prefix, first_v2) in family {
        if let Some(version) = image.strip_prefix(prefix) {
            return match major(version) {
                Some(v) if v >= first_v2 => ImageKind::CuratedCliV2,
                Some(_) => ImageKind::CuratedCliV1,
                None => ImageKind::Unknown,
            };
        }
    }
    ImageKind::Unknown
}

fn is_docker_command(cmd: &str) -> bool {
    [
        "docker build",
        "docker push",
        "docker buildx",
        "docker-compose build",
    ]
    .iter()
    .any(|d| cmd.contains(d))
}

/// `aws ecr get-login` (not `get-login-password`).
fn is_old_ecr_login(cmd: &str) -> bool {
    cmd.match_indices("ecr get-login")
        .any(|(i, _)| !cmd[i + "ecr get-login".len()..].starts_with("-password"))
}

/// FD605–FD607: what every CodeBuild project needs, whatever deploys it.
fn check_project(m: &Model<'_>, out: &mut Sink<'_>, project: &Resource<'_>) {
    let env = project.prop("Environment");
    let image_node = env.and_then(|e| e.get("Image"));
    let image = image_node.and_then(|n| m.r.string(n));
    // `Some(name)` when the image is a parameter: the deploy may pass another.
    let image_param = image_node.and_then(|n| m.r.param_ref(n)).map(|(p, _)| p);
    let from = image_param
        .map(|p| format!(" (the default of parameter {p})"))
        .unwrap_or_default();
    let kind = match (&image, image_param) {
        (Some(i), None) => image_kind(i),
        _ => ImageKind::Unknown,
    };
    let default_kind = image.as_deref().map(image_kind);
    if let (Some(image), Some(ImageKind::Retired)) = (&image, default_kind) {
        out.report_as(
            &FD606,
            Severity::Warning,
            project,
            key_pos(env, "Image", project.pos),
            format!(
                "project {} uses the CodeBuild image {image}{from}, a curated image AWS no longer supports: it gets no security updates and may be removed",
                project.id
            ),
            "use a current image such as aws/codebuild/standard:7.0 or aws/codebuild/amazonlinux2-x86_64-standard:5.0 (with PrivilegedMode: true for docker builds)".into(),
        );
    }
    let Buildspec::Read {
        root,
        file,
        line_base,
        anchor,
    } = pipeline::buildspec(m, project)
    else {
        return;
    };
    let commands = pipeline::commands(&root);
    for (line, cmd) in &commands {
        if is_old_ecr_login(cmd) {
            let (sev, why) = match (kind, default_kind, &image) {
                (ImageKind::CuratedCliV2, _, Some(i)) => (
                    Severity::Error,
                    format!("which AWS CLI v2 (in the image {i}) no longer has; the build fails before pushing the image"),
                ),
                (_, Some(ImageKind::CuratedCliV2), Some(i)) => (
                    Severity::Warning,
                    format!("which AWS CLI v2 no longer has; the image {i}{from} ships AWS CLI v2, so the build fails unless the deploy passes an image with AWS CLI v1"),
                ),
                (_, _, Some(i)) => (
                    Severity::Warning,
                    format!("which AWS CLI v2 no longer has; it works only while the image {i}{from} ships AWS CLI v1, and the build fails as soon as it moves to a current image"),
                ),
                (_, _, None) => (
                    Severity::Warning,
                    "which AWS CLI v2 no longer has; the build fails as soon as its image ships AWS CLI v2 (every current CodeBuild image does)".to_string(),
                ),
            };
            out.report_in(
                &FD605,
                sev,
                project,
                file.clone(),
                buildspec_pos(m, &file, line_base, *line),
                format!(
                    "the buildspec of project {} runs `aws ecr get-login`, {why}",
                    project.id
                ),
                "use: aws ecr get-login-password --region $AWS_DEFAULT_REGION | docker login --username AWS --password-stdin $ACCOUNT.dkr.ecr.$AWS_DEFAULT_REGION.amazonaws.com".into(),
            );
        }
    }
    let privileged = env
        .and_then(|e| e.get("PrivilegedMode"))
        .and_then(|n| m.r.bool(n));
    // Windows build images run docker without privileged mode (they do not
    // support it); only Linux containers need it.
    let windows = env
        .and_then(|e| e.get("Type"))
        .and_then(|n| m.r.string(n))
        .is_some_and(|t| t.contains("WINDOWS"));
    if privileged != Some(true)
        && !windows
        && let Some((line, _)) = commands.iter().find(|(_, c)| is_docker_command(c))
    {
        let pos = if env.is_some() {
            key_pos(env, "PrivilegedMode", project.pos_of("Environment"))
        } else {
            anchor
        };
        let docker_line = buildspec_pos(m, &file, line_base, *line).line;
        let daemon = "the build fails with \"Cannot connect to the Docker daemon\"";
        let (sev, what) = match (kind, default_kind, &image) {
            (k, _, Some(i)) if k.curated() => (
                Severity::Error,
                format!("{daemon} (the image {i} starts dockerd only in privileged mode)"),
            ),
            (_, Some(k), Some(i)) if k.curated() => (
                Severity::Warning,
                format!(
                    "with the image {i}{from} {daemon}, unless the deploy passes an image that runs docker without privileged mode"
                ),
            ),
            (_, _, Some(i)) => (
                Severity::Warning,
                format!(
                    "whether the image {i}{from} can run docker without it is not known; every current curated image needs it, or {daemon}"
                ),
            ),
            (_, _, None) => (
                Severity::Warning,
                format!("every current curated image needs it, or {daemon}"),
            ),
        };
        out.report_as(
            &FD607,
            sev,
            project,
            pos,
            format!(
                "the buildspec of project {} runs docker (line {docker_line}), but the project does not set PrivilegedMode: true; {what}",
                project.id,
            ),
            "set Environment: {PrivilegedMode: true} on the CodeBuild project".into(),
        );
    }
}

/// FD608: a blue/green deploy reads imageDetail.json from its image artifact.
fn check_blue_green(
    m: &Model<'_>,
    out: &mut Sink<'_>,
    p: &Resource<'_>,
    a: &pipeline::Action<'_>,
    actions: &[pipeline::Action<'_>],
) {
    let Some(artifact) = a
        .config
        .and_then(|c| c.get("Image1ArtifactName"))
        .and_then(|n| m.r.string(n))
    else {
        return;
    };
    let Some(producer) = actions.iter().find(|b| b.outputs.contains(&artifact)) else {
        return;
    };
    if producer.provider != "CodeBuild" {
        return; // an ECR source action writes imageDetail.json itself
    }
    let Some(project) = pipeline::project(m, producer) else {
        return;
    };
    let pos = a
        .config
        .and_then(|c| c.entry("Image1ArtifactName"))
        .map(|(k, _)| k.pos)
        .unwrap_or(a.node.pos);
    match pipeline::buildspec(m, project) {
        Buildspec::Read { root, .. } => {
            let detail = pipeline::facts(&root, "imageDetail.json", &HashMap::new());
            if !detail.writes.is_empty() {
                return;
            }
            let defs = pipeline::facts(&root, "imagedefinitions.json", &HashMap::new());
            // Writing the rolling deploy's file instead is the classic
            // mistake; a buildspec that writes neither may call a script.
            let (sev, writes) = if defs.writes.is_empty() {
                (
                    Severity::Note,
                    "does not write it in its commands (a script it runs must)".to_string(),
                )
            } else {
                (
                    Severity::Error,
                    "writes only imagedefinitions.json, which blue/green deploys do not read"
                        .to_string(),
                )
            };
            out.report_as(
                &FD608,
                sev,
                p,
                pos,
                format!(
                    "pipeline {} CodeDeployToECS action {} reads imageDetail.json from artifact {artifact}, but the buildspec of project {} {writes}; the deploy fails with \"Exception while trying to read the image artifact file\"",
                    p.id, a.name, project.id
                ),
                "write it in post_build: printf '{\"ImageURI\":\"%s\"}' $REPOSITORY_URI:$TAG > imageDetail.json, and list it (with appspec.yaml and taskdef.json) under artifacts.files".into(),
            );
        }
        Buildspec::Unreadable { why, .. } => out.note(
            &FD608,
            p,
            pos,
            format!(
                "{why}; for CodeDeployToECS action {} it must write imageDetail.json (not only imagedefinitions.json) into artifact {artifact}",
                a.name
            ),
            "pass the buildspec with --buildspec, or make sure it writes imageDetail.json".into(),
        ),
        Buildspec::Invalid { .. } => {}
    }
}
