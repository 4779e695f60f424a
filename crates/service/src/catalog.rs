//! Reading the registry: functions, versions, the pending queue, and the
//! tool catalog that agents hand to a model. Agents see active versions
//! only; everything else answers `not_found` to them, as another tenant's
//! functions do.

use aifn_registry::{FunctionDetail, FunctionSummary, Principal, StateCounts, VersionInfo};
use aifn_types::{FunctionName, Role, VersionState};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::require;
use crate::schema::not_an_object_schema;
use crate::{Service, ServiceError};

/// Tool-definition formats for LLM function calling.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolFormat {
    /// `[{"type":"function","function":{"name","description","parameters"}}]`
    #[default]
    OpenAi,
    /// `[{"name","description","input_schema"}]`
    Anthropic,
}

/// One active function as a model's tool, in the format asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ToolDefinition {
    /// OpenAI's function-calling shape.
    OpenAi(OpenAiTool),
    /// Anthropic's tool-use shape.
    Anthropic(AnthropicTool),
}

/// `{"type": "function", "function": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAiTool {
    /// Always `function`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The function.
    pub function: OpenAiFunction,
}

/// The function of an [`OpenAiTool`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAiFunction {
    /// The function name.
    pub name: FunctionName,
    /// What it does, from the active version's manifest.
    pub description: String,
    /// The input schema (an object schema).
    pub parameters: Value,
}

/// `{"name", "description", "input_schema"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnthropicTool {
    /// The function name.
    pub name: FunctionName,
    /// What it does, from the active version's manifest.
    pub description: String,
    /// The input schema (an object schema).
    pub input_schema: Value,
}

fn not_found(function: &str) -> ServiceError {
    ServiceError::NotFound {
        what: format!("function {function}"),
    }
}

/// What an agent may see of a function: its active version only.
fn agent_summary(mut s: FunctionSummary) -> Option<FunctionSummary> {
    let active = s.active_version?;
    s.latest_version = active;
    s.latest_state = VersionState::Active;
    s.counts = StateCounts {
        active: 1,
        ..StateCounts::default()
    };
    Some(s)
}

impl Service {
    /// The caller's tenant's functions (for agents, those with an active
    /// version).
    pub fn list_functions(&self, who: &Principal) -> Result<Vec<FunctionSummary>, ServiceError> {
        let all = self.inner.registry.list_functions(&who.tenant)?;
        Ok(if who.role == Role::Agent {
            all.into_iter().filter_map(agent_summary).collect()
        } else {
            all
        })
    }

    /// Versions awaiting approval in the caller's tenant. Agents have no
    /// pending queue: it answers `not_found` to them.
    pub fn list_pending(&self, who: &Principal) -> Result<Vec<VersionInfo>, ServiceError> {
        if who.role == Role::Agent {
            return Err(ServiceError::NotFound {
                what: "pending queue".into(),
            });
        }
        Ok(self.inner.registry.list_pending(&who.tenant)?)
    }

    /// One function with its versions (for agents, the active one only).
    pub fn get_function(
        &self,
        who: &Principal,
        function: &str,
    ) -> Result<FunctionDetail, ServiceError> {
        let n = FunctionName::new(function).map_err(|_| not_found(function))?;
        let mut detail = self.inner.registry.get_function(&who.tenant, &n)?;
        if who.role == Role::Agent {
            detail.summary = agent_summary(detail.summary).ok_or_else(|| not_found(function))?;
            detail.versions.retain(|v| v.state == VersionState::Active);
        }
        Ok(detail)
    }

    /// One version: manifest, inspection report, decisions (for agents,
    /// only while it is active).
    pub fn get_version(
        &self,
        who: &Principal,
        function: &str,
        version: u32,
    ) -> Result<VersionInfo, ServiceError> {
        let n = FunctionName::new(function).map_err(|_| not_found(function))?;
        let info = self.inner.registry.get_version(&who.tenant, &n, version)?;
        if who.role == Role::Agent && info.state != VersionState::Active {
            return Err(ServiceError::NotFound {
                what: format!("version {function}@{version}"),
            });
        }
        Ok(info)
    }

    /// Refuses unless `who` may read the tool catalog (agents). Transports
    /// call it before they parse the request's parameters, so a caller
    /// without the role gets `forbidden` whatever it sent.
    pub fn authorize_tools(&self, who: &Principal) -> Result<(), ServiceError> {
        require(who, &[Role::Agent], "reading the tool catalog")
    }

    /// The tenant's active functions the calling agent may invoke (its
    /// policy admits them, or the tenant is `open`), as tool definitions
    /// for a model. A version whose input schema is not an object schema
    /// (uploads before that rule) is left out, since model APIs refuse it.
    pub fn tools(
        &self,
        who: &Principal,
        format: ToolFormat,
    ) -> Result<Vec<ToolDefinition>, ServiceError> {
        self.authorize_tools(who)?;
        let permitted = self.permitted(who)?;
        let active = self.inner.registry.active_versions(&who.tenant)?;
        Ok(active
            .into_iter()
            .filter(|v| permitted(&v.name))
            .filter(|v| {
                let why = not_an_object_schema(&v.manifest.input_schema);
                if let Some(why) = &why {
                    tracing::warn!(tenant = %who.tenant, function = %v.name, version = v.version, why, "left out of the tool catalog");
                }
                why.is_none()
            })
            .map(|v| tool(v, format))
            .collect())
    }
}

fn tool(v: VersionInfo, format: ToolFormat) -> ToolDefinition {
    let (name, description, schema) = (v.name, v.manifest.description, v.manifest.input_schema);
    match format {
        ToolFormat::OpenAi => ToolDefinition::OpenAi(OpenAiTool {
            kind: "function".into(),
            function: OpenAiFunction {
                name,
                description,
                parameters: schema,
            },
        }),
        ToolFormat::Anthropic => ToolDefinition::Anthropic(AnthropicTool {
            name,
            description,
            input_schema: schema,
        }),
    }
}
