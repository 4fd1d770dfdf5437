//! sftp v3 server for the pty sftp channel; FUSE mount client over that channel (skeleton, see issue 5).
