//! Placeholder of the custom-app launcher (replaced by the app-SDK work): the API the apps manager calls.
#![allow(missing_docs, clippy::missing_errors_doc, dead_code)]
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::appserver::AppServer;

#[derive(Debug, thiserror::Error)]
#[error("custom apps are not available in this build")]
pub struct ProcError;

#[derive(Debug, Clone)]
pub struct ProcSpec {
    pub name: String,
    pub binary: PathBuf,
    pub args: Vec<String>,
    pub work_dir: PathBuf,
    pub port: u16,
    pub log_path: PathBuf,
    pub env: Vec<(String, String)>,
}

#[derive(Debug)]
pub struct Proc;

impl Proc {
    pub fn spawn(_server: &Arc<AppServer>, _spec: ProcSpec) -> Result<Proc, ProcError> {
        Err(ProcError)
    }
    pub fn pid(&self) -> Option<u32> {
        None
    }
    pub fn detailed_status(&self) -> String {
        String::new()
    }
    pub fn app_error(&self) -> Option<String> {
        None
    }
    pub async fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        Err(std::io::Error::other("no process"))
    }
    pub async fn stop(&mut self, _grace: Duration) -> std::io::Result<std::process::ExitStatus> {
        Err(std::io::Error::other("no process"))
    }
}

pub fn record_pid(_pid_file: &Path, _name: &str, _pid: u32) -> std::io::Result<()> {
    Ok(())
}
pub fn kill_leftovers(_pid_file: &Path) -> std::io::Result<usize> {
    Ok(0)
}
