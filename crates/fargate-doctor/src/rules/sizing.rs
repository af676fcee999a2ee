//! FD4xx — Fargate task sizes.
//!
//! Fargate only accepts fixed CPU/memory pairs; anything else fails at
//! registration with "Invalid 'cpu' setting for task". A container's memory
//! can never exceed the task's.

use super::{Sink, list};
use crate::model::Model;
use crate::template::Node;

super::declare_rules! {
    FD401 = (
        "invalid-fargate-size",
        Error,
        "Task Cpu/Memory is not a valid Fargate combination"
    );
    FD402 = (
        "container-memory-over-task",
        Error,
        "Container memory is above the task memory"
    );
}

/// Valid memory sizes (MiB) for a Fargate CPU value, per the Fargate table.
pub fn valid_memory(cpu: i64) -> Option<Vec<i64>> {
    let range = |lo: i64, hi: i64, step: i64| {
        (0..)
            .map(move |i| lo + i * step)
            .take_while(move |v| *v <= hi)
            .collect()
    };
    Some(match cpu {
        256 => vec![512, 1024, 2048],
        512 => range(1024, 4096, 1024),
        1024 => range(2048, 8192, 1024),
        2048 => range(4096, 16384, 1024),
        4096 => range(8192, 30720, 1024),
        8192 => range(16384, 61440, 4096),
        16384 => range(32768, 122880, 8192),
        _ => return None,
    })
}

/// `"256"`, `256`, `"0.25 vCPU"`, `"1 vcpu"` → CPU units.
pub fn cpu_units(s: &str) -> Option<i64> {
    let t = s.trim().to_ascii_lowercase();
    if let Some(v) = t.strip_suffix("vcpu") {
        let f: f64 = v.trim().parse().ok()?;
        return Some((f * 1024.0).round() as i64);
    }
    t.parse().ok()
}

/// `"512"`, `"0.5 GB"`, `"2GB"` → MiB.
pub fn memory_mib(s: &str) -> Option<i64> {
    let t = s.trim().to_ascii_lowercase();
    if let Some(v) = t.strip_suffix("gb") {
        let f: f64 = v.trim().parse().ok()?;
        return Some((f * 1024.0).round() as i64);
    }
    t.strip_suffix("mb").unwrap_or(&t).trim().parse().ok()
}

fn show(v: &[i64]) -> String {
    if v.len() <= 4 {
        list(&v.iter().map(|x| x.to_string()).collect::<Vec<_>>())
    } else {
        format!("{}–{} in steps of {}", v[0], v[v.len() - 1], v[1] - v[0])
    }
}

pub fn check(m: &Model<'_>, out: &mut Sink<'_>) {
    for td in m.task_defs() {
        let id = td.res.id;
        let parsed = |n: Option<&Node>, f: fn(&str) -> Option<i64>| {
            n.map(|n| m.r.string(n).map(|s| (f(&s), s)))
        };
        let cpu = parsed(td.cpu, cpu_units);
        let mem = parsed(td.memory, memory_mib);
        let task_mem = match &mem {
            Some(Some((Some(v), _))) => Some(*v),
            _ => None,
        };
        if m.task_def_is_fargate(&td) {
            let mem_pos = td.res.pos_of("Memory");
            let cpu_pos = td.res.pos_of("Cpu");
            match (&cpu, &mem) {
                (None, _) | (_, None) => {
                    let missing: Vec<String> = [("Cpu", cpu.is_none()), ("Memory", mem.is_none())]
                        .iter()
                        .filter(|(_, m)| *m)
                        .map(|(n, _)| n.to_string())
                        .collect();
                    out.report(
                        &FD401,
                        &td.res,
                        td.res.pos,
                        format!("Fargate task definition {id} has no task-level {}; Fargate requires both Cpu and Memory", list(&missing)),
                        "set Cpu and Memory to a valid pair, e.g. Cpu: 256 and Memory: 512".into(),
                    );
                }
                (Some(None), _) | (_, Some(None)) => out.note(
                    &FD401,
                    &td.res,
                    cpu_pos,
                    format!("task definition {id}: Cpu/Memory come from parameters without defaults; they must form a valid Fargate pair"),
                    "see `fargate-doctor rules FD401` for the table".into(),
                ),
                (Some(Some((c, cs))), Some(Some((mv, ms)))) => match (c, mv) {
                    (Some(c), Some(mv)) => match valid_memory(*c) {
                        None => out.report(
                            &FD401,
                            &td.res,
                            cpu_pos,
                            format!("task definition {id} has Cpu {cs}, which Fargate does not offer (256, 512, 1024, 2048, 4096, 8192 or 16384)"),
                            "pick a Fargate CPU value and a memory size it allows".into(),
                        ),
                        Some(valid) if !valid.contains(mv) => out.report(
                            &FD401,
                            &td.res,
                            mem_pos,
                            format!("task definition {id} has Cpu {cs} with Memory {ms}, which is not a valid Fargate combination (Cpu {c} allows {} MiB)", show(&valid)),
                            format!("set Memory to one of {} MiB, or change Cpu", show(&valid)),
                        ),
                        Some(_) => {}
                    },
                    _ => out.report(
                        &FD401,
                        &td.res,
                        cpu_pos,
                        format!("task definition {id} has Cpu {cs} / Memory {ms}, which cannot be read as CPU units and MiB"),
                        "use CPU units (256) or vCPU (\"0.25 vCPU\"), and MiB (512) or GB (\"0.5 GB\")".into(),
                    ),
                },
            }
        }
        // FD402
        let Some(task_mem) = task_mem else { continue };
        let mut sum = 0;
        for c in &td.containers {
            let name = c.name.clone().unwrap_or_else(|| "?".into());
            for (label, v) in [
                ("Memory", c.memory),
                ("MemoryReservation", c.memory_reservation),
            ] {
                if let Some((v, node)) = v
                    && v > task_mem
                {
                    out.report(
                        &FD402,
                        &td.res,
                        node.pos,
                        format!("container {name} of task definition {id} has {label} {v} MiB, above the task memory of {task_mem} MiB"),
                        format!("lower the container's {label} to at most {task_mem}, or raise the task Memory"),
                    );
                }
            }
            sum += c.memory.map(|(v, _)| v).unwrap_or(0);
        }
        if sum > task_mem
            && td
                .containers
                .iter()
                .all(|c| c.memory.is_none_or(|(v, _)| v <= task_mem))
        {
            out.report(
                &FD402,
                &td.res,
                td.res.pos_of("Memory"),
                format!("the containers of task definition {id} reserve {sum} MiB in total, above the task memory of {task_mem} MiB"),
                "lower the containers' Memory so they sum to at most the task Memory".into(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fargate_table() {
        assert_eq!(valid_memory(256), Some(vec![512, 1024, 2048]));
        assert_eq!(valid_memory(512).unwrap(), vec![1024, 2048, 3072, 4096]);
        assert!(valid_memory(4096).unwrap().contains(&30720));
        assert!(valid_memory(8192).unwrap().contains(&20480));
        assert!(!valid_memory(8192).unwrap().contains(&18432));
        assert!(valid_memory(16384).unwrap().contains(&122880));
        assert_eq!(valid_memory(300), None);
        assert_eq!(cpu_units("0.25 vCPU"), Some(256));
        assert_eq!(memory_mib("0.5 GB"), Some(512));
        assert_eq!(memory_mib("2GB"), Some(2048));
    }
}
