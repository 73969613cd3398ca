//! What the admin token may ask of the machine the gateway runs on. A server or chain sent to
//! the API that starts a program, loads a component from a local path, or reads a file as a
//! secret is refused unless `management.allow` opens it: whoever holds the token can then
//! reach the network through the gateway, not the gateway's host. The config file, written by
//! whoever runs the gateway, may use all three.

use crate::config::{BackendConfig, ManagementAllow, PolicyBinding, Problem, ServerConfig, VersionConfig};

use super::api_error::ApiError;

/// Refuses a server whose backends or chains reach past what `allow` opens.
pub fn server(allow: &[ManagementAllow], at: &str, s: &ServerConfig) -> Result<(), ApiError> {
    let mut out = Vec::new();
    backend(allow, &mut out, &format!("{at}.backend"), &s.backend);
    bindings(allow, &mut out, &format!("{at}.policies"), &s.policies);
    for (i, v) in s.versions.iter().enumerate() {
        backend(allow, &mut out, &format!("{at}.versions[{i}].backend"), &v.backend);
        bindings(allow, &mut out, &format!("{at}.versions[{i}].policies"), &v.policies);
    }
    done(out)
}

/// As [`server`], for one version sent on its own.
pub fn version(allow: &[ManagementAllow], at: &str, v: &VersionConfig) -> Result<(), ApiError> {
    let mut out = Vec::new();
    backend(allow, &mut out, &format!("{at}.backend"), &v.backend);
    bindings(allow, &mut out, &format!("{at}.policies"), &v.policies);
    done(out)
}

/// Refuses a chain that loads a local component or reads a file, unless allowed.
pub fn chain(allow: &[ManagementAllow], at: &str, list: &[PolicyBinding]) -> Result<(), ApiError> {
    let mut out = Vec::new();
    bindings(allow, &mut out, at, list);
    done(out)
}

fn done(out: Vec<Problem>) -> Result<(), ApiError> {
    if out.is_empty() { Ok(()) } else { Err(ApiError::Forbidden(out)) }
}

fn refuse(out: &mut Vec<Problem>, path: String, what: &str, key: &str) {
    out.push(Problem {
        path,
        line: None,
        column: None,
        message: format!("{what} through the management API needs `management.allow: [{key}]` in the config file"),
    });
}

fn backend(allow: &[ManagementAllow], out: &mut Vec<Problem>, at: &str, b: &BackendConfig) {
    if b.stdio.is_some() && !allow.contains(&ManagementAllow::Stdio) {
        refuse(out, format!("{at}.stdio"), "starting a program", "stdio");
    }
    for (place, secret) in b.secrets() {
        if secret.reference().is_some_and(|r| r.file.is_some()) && !allow.contains(&ManagementAllow::FileSecrets) {
            refuse(out, format!("{at}.{place}"), "a secret read from a file", "file_secrets");
        }
    }
    tls_files(allow, out, &format!("{at}.tls"), b.tls.as_ref());
}

/// A CA bundle or client certificate read from the gateway's disk is a file read too.
fn tls_files(allow: &[ManagementAllow], out: &mut Vec<Problem>, at: &str, tls: Option<&crate::config::ClientTls>) {
    let Some(t) = tls.filter(|_| !allow.contains(&ManagementAllow::FileSecrets)) else { return };
    for (field, set) in [("ca", t.ca.is_some()), ("cert", t.cert.is_some())] {
        if set {
            refuse(out, format!("{at}.{field}"), "a certificate file read from the gateway's disk", "file_secrets");
        }
    }
}

fn bindings(allow: &[ManagementAllow], out: &mut Vec<Problem>, at: &str, list: &[PolicyBinding]) {
    for (j, b) in list.iter().enumerate() {
        if b.is_path() && !allow.contains(&ManagementAllow::LocalPolicies) {
            refuse(out, format!("{at}[{j}].policy"), "a component loaded from a local path", "local_policies");
        }
        for (name, r) in &b.secrets {
            if r.file.is_some() && !allow.contains(&ManagementAllow::FileSecrets) {
                refuse(out, format!("{at}[{j}].secrets.{name}"), "a secret read from a file", "file_secrets");
            }
        }
        if let Some(k) = b.tls.as_ref().and_then(|t| t.key.as_ref()).and_then(|k| k.reference())
            && k.file.is_some()
            && !allow.contains(&ManagementAllow::FileSecrets)
        {
            refuse(out, format!("{at}[{j}].tls.key"), "a secret read from a file", "file_secrets");
        }
        tls_files(allow, out, &format!("{at}[{j}].tls"), b.tls.as_ref());
    }
}
