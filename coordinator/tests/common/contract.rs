//! Every answer the harness receives is checked against the OpenAPI document the server
//! publishes (`/v1/openapi.json`): the operation must be documented, and a JSON body
//! must match the schema of its status (or of `default`). A mismatch fails the test
//! that received it, naming the operation, the status and what differed.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, OnceLock};

use serde_json::{json, Value};

fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        serde_json::from_str(taskswarm_coordinator::http::openapi::document())
            .expect("the document is JSON")
    })
}

/// The documented path template for a concrete path: static segments win over
/// parameters (`/v1/tasks/batch` before `/v1/tasks/{id}`).
fn template_of(path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.split('/').collect();
    document()["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .filter_map(|template| {
            let parts: Vec<&str> = template.split('/').collect();
            if parts.len() != segments.len() {
                return None;
            }
            let mut params = 0;
            for (t, s) in parts.iter().zip(&segments) {
                if t.starts_with('{') {
                    params += 1;
                } else if t != s {
                    return None;
                }
            }
            Some((params, template.as_str()))
        })
        .min()
        .map(|(_, t)| t)
}

/// The JSON pointer of the response schema for this answer, if its body is JSON.
fn schema_pointer(method: &str, path: &str, status: u16) -> Result<Option<String>, String> {
    let doc = document();
    let Some(template) = template_of(path) else {
        // Unknown paths answer the fallback's 404 (or 405): an error body.
        return if status == 404 || status == 405 {
            Ok(Some("/components/schemas/ErrorBody".into()))
        } else {
            Err(format!(
                "{method} {path} answered {status} but is not in the document"
            ))
        };
    };
    let escaped = template.replace('~', "~0").replace('/', "~1");
    let operation = format!("/paths/{escaped}/{}", method.to_ascii_lowercase());
    if doc.pointer(&operation).is_none() {
        return if status == 405 {
            Ok(Some("/components/schemas/ErrorBody".into()))
        } else {
            Err(format!("{method} {template} is not in the document"))
        };
    }
    let responses = &doc
        .pointer(&format!("{operation}/responses"))
        .expect("responses");
    let (key, mut response) = match responses.get(status.to_string()) {
        Some(r) => (status.to_string(), r),
        None => ("default".to_owned(), &responses["default"]),
    };
    let mut pointer = format!("{operation}/responses/{key}");
    if let Some(reference) = response.get("$ref").and_then(Value::as_str) {
        pointer = reference.trim_start_matches('#').to_owned();
        response = doc.pointer(&pointer).expect("a resolvable response $ref");
    }
    if response.is_null() {
        return Err(format!(
            "{method} {template}: status {status} is not documented"
        ));
    }
    Ok(response
        .pointer("/content/application~1json/schema")
        .map(|_| format!("{pointer}/content/application~1json/schema")))
}

fn validator(pointer: &str) -> &'static jsonschema::Validator {
    static CACHE: OnceLock<Mutex<HashMap<String, &'static jsonschema::Validator>>> =
        OnceLock::new();
    let mut cache = CACHE.get_or_init(Default::default).lock().unwrap();
    cache.entry(pointer.to_owned()).or_insert_with(|| {
        // The whole document is the root (so `#/components/...` references resolve);
        // `$ref` points at the schema to apply. The OpenAPI keywords around it are not
        // JSON Schema keywords and are ignored.
        let mut root = document().clone();
        root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
        // A URI fragment: the braces of path templates are percent-encoded.
        let fragment = pointer.replace('{', "%7B").replace('}', "%7D");
        root["$ref"] = json!(format!("#{fragment}"));
        let built = jsonschema::draft202012::new(&root)
            .unwrap_or_else(|e| panic!("the schema at {pointer} compiles: {e}"));
        Box::leak(Box::new(built))
    })
}

/// Every (method, path template) the document lists.
pub fn operations() -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in document()["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            out.insert((method.to_ascii_uppercase(), path.clone()));
        }
    }
    out
}

fn covered_set() -> &'static Mutex<BTreeSet<(String, String)>> {
    static COVERED: OnceLock<Mutex<BTreeSet<(String, String)>>> = OnceLock::new();
    COVERED.get_or_init(Default::default)
}

/// The documented operations whose answers this test process has checked.
pub fn covered() -> BTreeSet<(String, String)> {
    covered_set().lock().unwrap().clone()
}

/// Panics when the answer does not match the document. `json` is false when the body
/// was not JSON (plain-text probes, event streams): then only the operation is checked.
pub fn check(method: &str, url: &str, status: u16, json: bool, body: &Value) {
    let path = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest.find('/').map_or("/", |i| &rest[i..]));
    let path = path.split('?').next().unwrap_or(path);
    let pointer = schema_pointer(method, path, status).unwrap_or_else(|e| panic!("{e}"));
    if let Some(template) = template_of(path) {
        covered_set()
            .lock()
            .unwrap()
            .insert((method.to_owned(), template.to_owned()));
    }
    let (Some(pointer), true) = (pointer, json) else {
        return;
    };
    let errors: Vec<String> = validator(&pointer)
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} answered {status} with a body the OpenAPI document does not allow:\n{}\nbody: {body}",
        errors.join("\n")
    );
}
