//! Secret settings as JSON (a destination's keys): what the API and the dashboard hold
//! between reading a request and sealing it.

use serde::Deserialize;
use serde_json::Value;

/// A JSON value holding secrets (keys): redacted in Debug, its strings zeroized when
/// dropped.
pub struct SecretJson(Value);

impl SecretJson {
    /// Takes ownership of `value`, which is wiped when this is dropped.
    pub fn new(value: Value) -> Self {
        Self(value)
    }

    /// The JSON, for sealing or connecting; never for a log line or an answer.
    pub fn value(&self) -> &Value {
        &self.0
    }
}

impl std::fmt::Debug for SecretJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretJson(<redacted>)")
    }
}

impl<'de> Deserialize<'de> for SecretJson {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(Self)
    }
}

impl Drop for SecretJson {
    fn drop(&mut self) {
        fn wipe(v: &mut Value) {
            match v {
                Value::String(s) => zeroize::Zeroize::zeroize(s),
                Value::Array(items) => items.iter_mut().for_each(wipe),
                Value::Object(map) => map.values_mut().for_each(wipe),
                _ => {}
            }
        }
        wipe(&mut self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::SecretJson;

    #[test]
    fn debug_never_shows_the_keys() {
        let json = SecretJson::new(serde_json::json!({ "secret_access_key": "s3cr3t" }));
        assert_eq!(format!("{json:?}"), "SecretJson(<redacted>)");
        assert_eq!(json.value()["secret_access_key"], "s3cr3t");
    }
}
