//! What a failure report adds on a cluster with real containers: the logs of
//! containers that are failing (the previous run's, as `kubectl logs
//! --previous` shows, when the container has restarted) and the events of
//! the scenario's namespaces.

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{ListParams, LogParams};
use kube::{Api, Client};
use serde_json::Value;

/// Lines of each log kept in a report.
const LOG_LINES: i64 = 20;

/// Logs of every container that is not ready and not completed.
pub async fn failing_container_logs(client: &Client, pods: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    for pod in pods {
        let ns = crate::object::namespace(pod);
        let name = crate::object::meta_str(pod, "name");
        let api: Api<Pod> = Api::namespaced(client.clone(), ns);
        for key in ["initContainerStatuses", "containerStatuses"] {
            for s in pod["status"][key].as_array().into_iter().flatten() {
                let completed = s["state"]["terminated"]["exitCode"] == 0;
                if s["ready"] == true || completed {
                    continue;
                }
                let container = s["name"].as_str().unwrap_or("").to_string();
                let previous = s["restartCount"].as_i64().unwrap_or(0) > 0;
                let params = LogParams {
                    container: Some(container.clone()),
                    previous,
                    tail_lines: Some(LOG_LINES),
                    ..Default::default()
                };
                let which = if previous {
                    "previous run"
                } else {
                    "current run"
                };
                match api.logs(name, &params).await {
                    Ok(text) if text.trim().is_empty() => {
                        out.push(format!("logs {ns}/{name} {container} ({which}): (empty)"))
                    }
                    Ok(text) => {
                        out.push(format!("logs {ns}/{name} {container} ({which}):"));
                        out.extend(text.lines().map(|l| format!("  {l}")));
                    }
                    Err(e) => out.push(format!(
                        "logs {ns}/{name} {container} ({which}): unavailable ({})",
                        super::resources::api_error_message(&e)
                    )),
                }
            }
        }
    }
    out
}

/// The events of `namespaces`, oldest first: `kind/name reason: message`.
pub async fn events(client: &Client, namespaces: &[String]) -> Vec<String> {
    let mut rows = Vec::new();
    for ns in namespaces {
        let api: Api<Event> = Api::namespaced(client.clone(), ns);
        let Ok(list) = api.list(&ListParams::default()).await else {
            rows.push((String::new(), format!("events of {ns}: cannot list")));
            continue;
        };
        for e in list.items {
            let when = e
                .last_timestamp
                .as_ref()
                .map(|t| t.0.to_string())
                .or_else(|| e.event_time.as_ref().map(|t| t.0.to_string()))
                .unwrap_or_default();
            let count = e.count.unwrap_or(1);
            let line = format!(
                "{ns} {}/{} {} {}{}: {}",
                e.involved_object.kind.unwrap_or_default(),
                e.involved_object.name.unwrap_or_default(),
                e.type_.unwrap_or_default(),
                e.reason.unwrap_or_default(),
                if count > 1 {
                    format!(" (x{count})")
                } else {
                    String::new()
                },
                e.message.unwrap_or_default().trim()
            );
            rows.push((when, line));
        }
    }
    rows.sort();
    rows.into_iter().map(|(_, l)| l).collect()
}
