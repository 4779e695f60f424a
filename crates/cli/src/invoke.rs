//! The agent's commands over HTTP: invoke a function, list the tools.

use std::path::Path;

use aifn_service::{InvokeReply, ToolDefinition, ToolList};
use anyhow::Context as _;
use serde_json::{Value, json};

use crate::client::Conn;
use crate::output::{self, err};
use crate::{Exit, run};

pub(crate) fn invoke(
    conn: &Conn,
    name: &str,
    input: Option<&str>,
    input_file: Option<&Path>,
    user: &str,
) -> anyhow::Result<Exit> {
    let bytes = run::read_input(input, input_file)?;
    let input: Value = serde_json::from_slice(&bytes).context("the input must be JSON")?;
    let path = format!("/v1/functions/{name}/invoke");
    let body = json!({"input": input, "user_id": user});
    let Some(reply) = conn.post_as::<InvokeReply>(&path, &body)? else {
        return Ok(Exit::Failed);
    };
    if conn.print_raw(&reply) {
        return Ok(Exit::Ok);
    }
    let r = &reply.value;
    output::json(&r.output);
    err!(
        "execution_id {}  version {}  fuel {}  {:.3} ms",
        r.execution_id,
        r.version,
        r.fuel_used,
        r.duration_ms
    );
    Ok(Exit::Ok)
}

pub(crate) fn tools(conn: &Conn, format: &str) -> anyhow::Result<Exit> {
    let Some(reply) = conn.get_as::<ToolList>(&format!("/v1/tools?format={format}"))? else {
        return Ok(Exit::Failed);
    };
    if conn.json_output() {
        output::json(&reply.raw["tools"]);
        return Ok(Exit::Ok);
    }
    let mut rows = Vec::new();
    for t in reply.value.tools {
        let (name, description) = match t {
            ToolDefinition::OpenAi(t) => (t.function.name, t.function.description),
            ToolDefinition::Anthropic(t) => (t.name, t.description),
        };
        rows.push(vec![
            name.to_string(),
            description.chars().take(80).collect(),
        ]);
    }
    output::table(&["TOOL", "DESCRIPTION"], rows);
    Ok(Exit::Ok)
}
