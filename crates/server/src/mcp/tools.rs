//! `tools/list`: the caller's tool catalog (the functions it may invoke)
//! with each active version's schemas, sorted by name.

use std::sync::Arc;

use aifn_service::{Principal, Service, ServiceError, ToolDefinition, ToolFormat};
use aifn_types::VersionState;
use rmcp::ErrorData;
use rmcp::model::{CacheScope, JsonObject, ListToolsResult, Tool, ToolAnnotations};
use serde_json::Value;

/// The tools `who` may call. The list differs per agent, so its cache
/// hints are `private` and immediately stale (a policy change takes effect
/// at the next list).
pub(super) async fn list(service: Service, who: Principal) -> Result<ListToolsResult, ErrorData> {
    let joined = tokio::task::spawn_blocking(move || catalog(&service, &who)).await;
    let mut tools = match joined {
        Ok(Ok(tools)) => tools,
        Ok(Err(e)) => return Err(protocol_error(&e)),
        Err(e) => {
            return Err(protocol_error(&ServiceError::internal(
                "tools/list task",
                &e,
            )));
        }
    };
    tools.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(ListToolsResult::with_all_items(tools)
        .with_ttl_ms(0)
        .with_cache_scope(CacheScope::Private))
}

fn catalog(service: &Service, who: &Principal) -> Result<Vec<Tool>, ServiceError> {
    let mut out = Vec::new();
    for def in service.tools(who, ToolFormat::OpenAi)? {
        let ToolDefinition::OpenAi(t) = def else {
            continue;
        };
        let f = t.function;
        // The output schema is the active version's (the catalog has the
        // input schema only); a version that changed meanwhile is skipped.
        let output_schema = match service.get_function(who, f.name.as_str()) {
            Ok(detail) => detail
                .versions
                .into_iter()
                .find(|v| v.state == VersionState::Active)
                .and_then(|v| v.manifest.output_schema),
            Err(ServiceError::NotFound { .. } | ServiceError::NotActive { .. }) => continue,
            Err(e) => return Err(e),
        };
        let mut tool = Tool::new_with_raw(
            f.name.to_string(),
            Some(f.description.into()),
            Arc::new(object(f.parameters)),
        )
        .with_title(f.name.to_string())
        .with_annotations(
            // Functions have no I/O and are deterministic.
            ToolAnnotations::new()
                .read_only(true)
                .destructive(false)
                .idempotent(true)
                .open_world(false),
        );
        if let Some(schema) = output_schema {
            tool = tool.with_raw_output_schema(Arc::new(object(schema)));
        }
        out.push(tool);
    }
    Ok(out)
}

/// A schema as a JSON object (the catalog holds object schemas only; an
/// output schema that is not an object is dropped by the SDK for peers
/// that cannot take it).
fn object(schema: Value) -> JsonObject {
    match schema {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    }
}

/// A failure to list at all (not about one tool) is a protocol error.
pub(super) fn protocol_error(e: &ServiceError) -> ErrorData {
    ErrorData::internal_error(format!("{}: {e}", e.kind().as_str()), None)
}
