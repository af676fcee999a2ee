//! FD6xx — CodePipeline deploys to ECS.
//!
//! The ECS deploy action reads `imagedefinitions.json` (or its `FileName`)
//! from its input artifact and swaps the image of the container named there.
//! If no build writes that file, or it names a container the service's task
//! definition does not have, the deploy fails ("The AWS ECS container ... does
//! not exist").

use super::{Severity, Sink, list};
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
}

pub fn check(m: &Model<'_>, out: &mut Sink<'_>) {
    for p in m.of_type("AWS::CodePipeline::Pipeline") {
        let actions = pipeline::actions(m, p);
        for a in &actions {
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
                format!("pass the buildspec with --buildspec FILE, or make sure it writes {file_name}"),
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
    let at = |line: usize| -> Pos {
        let l = line_base + line.saturating_sub(1);
        let col = m
            .buildspec
            .filter(|_| !in_template)
            .map(|(_, t)| t.as_str())
            .unwrap_or(&m.template.source)
            .lines()
            .nth(l.saturating_sub(1))
            .map(|s| s.len() - s.trim_start().len() + 1)
            .unwrap_or(1);
        Pos { line: l, col }
    };
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
