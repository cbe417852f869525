//! Typed readers over a JSON request body, for the front ends whose requests
//! are JSON objects (AWS's APIs, the console): what a field of each type
//! reads as, and the error that names a field of the wrong type.

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::engine::{KmsError, KmsResult};
use crate::kernel::ops::kms::Context;

/// Typed readers over a JSON request. An absent field reads as the type's
/// empty value, so the engine decides what is required; a present one of the
/// wrong type is refused naming it.
#[derive(Clone, Copy)]
pub struct Json<'a>(pub &'a Map<String, Value>);

impl Json<'_> {
    pub fn text(&self, name: &str) -> String {
        match self.0.get(name) {
            Some(Value::String(s)) => s.clone(),
            _ => String::new(),
        }
    }

    /// A boolean, `None` when not given.
    pub fn boolean(&self, name: &str) -> KmsResult<Option<bool>> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(KmsError::invalid_because(name, "Send true or false.")),
        }
    }

    pub fn long(&self, name: &str) -> KmsResult<i64> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(0),
            Some(Value::Number(n)) => n.as_i64().ok_or_else(|| KmsError::invalid_because(name, "Send an integer.")),
            Some(_) => Err(KmsError::invalid_because(name, "Send an integer.")),
        }
    }

    pub fn int(&self, name: &str) -> KmsResult<i32> {
        i32::try_from(self.long(name)?).map_err(|_| KmsError::invalid_because(name, "Send an integer."))
    }

    pub fn blob(&self, name: &str) -> KmsResult<Vec<u8>> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::String(s)) => base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|_| KmsError::invalid_because(name, "Send the bytes as base64.")),
            Some(_) => Err(KmsError::invalid_because(name, "Send the bytes as base64.")),
        }
    }

    pub fn context(&self, name: &str) -> KmsResult<Context> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(Context::new()),
            Some(Value::Object(entries)) => entries
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    _ => Err(KmsError::invalid_because(name, "Send a map of strings.")),
                })
                .collect(),
            Some(_) => Err(KmsError::invalid_because(name, "Send a map of strings.")),
        }
    }

    pub fn list(&self, name: &str) -> KmsResult<Vec<String>> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(value) => serde_json::from_value(value.clone())
                .map_err(|_| KmsError::invalid_because(name, "Send a list of strings.")),
        }
    }
}
