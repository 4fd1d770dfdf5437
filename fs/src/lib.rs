//! skywire-fs: the remote filesystem of the pty subsystem (pty.md 7). [`sftp`] is the sans-IO
//! SFTP v3 codec, [`server`] serves the host's filesystem on a stream (`dmsgpty/sftp`, or stdio
//! for OpenSSH's `sftp -D`), [`client`] is the pipelined async client, and [`mount`] maps it onto
//! FUSE (fuser) with attribute/entry caching, write-behind and readdirplus.

pub mod client;
pub mod mount;
pub mod server;
pub mod sftp;

pub use client::{SftpClient, SftpError};
pub use server::{ServerConfig, ServerError, serve};
