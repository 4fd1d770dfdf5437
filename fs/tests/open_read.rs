//! Our `open-read@skycoin.com` extension against our server: announced in `VERSION`, one round
//! trip gives a handle and the first bytes of a regular file; the handle then serves `READ`s;
//! a FIFO is refused at once (never blocks the server) and a missing file is ENOENT.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use skywire_fs::sftp::{OpenRead, OpenReadReply, Request, Response, ext};
use skywire_fs::{ServerConfig, SftpClient, serve};

async fn open_read(c: &SftpClient, path: &std::path::Path, len: u32) -> Response {
    let mut data = Vec::new();
    OpenRead {
        path: path.as_os_str().as_encoded_bytes().to_vec(),
        len,
    }
    .encode(&mut data);
    c.call(|id| Request::Extended {
        id,
        name: ext::OPEN_READ.as_bytes().to_vec(),
        data,
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn open_read_regular_fifo_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = tokio::net::UnixStream::pair().unwrap();
    tokio::spawn(async move { serve(a, ServerConfig::default()).await });
    let c = SftpClient::new(b).await.unwrap();
    assert!(c.has_extension(ext::OPEN_READ));

    let body: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let file = tmp.path().join("f");
    std::fs::write(&file, &body).unwrap();
    let Response::ExtendedReply { data, .. } = open_read(&c, &file, 4096).await else {
        panic!("no extended reply");
    };
    let rep = OpenReadReply::decode(&data).unwrap();
    assert_eq!(rep.data, &body[..4096]);
    let rest = c.read(&rep.handle, 4096, 10_000).await.unwrap();
    assert_eq!(rest, &body[4096..]);
    c.close_handle(&rep.handle).await.unwrap();

    // Short at end of file.
    let Response::ExtendedReply { data, .. } = open_read(&c, &file, 1 << 20).await else {
        panic!("no extended reply");
    };
    let rep = OpenReadReply::decode(&data).unwrap();
    assert_eq!(rep.data, body);
    c.close_handle(&rep.handle).await.unwrap();

    // A FIFO without a writer: refused, not a hang.
    let fifo = tmp.path().join("p");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let r = tokio::time::timeout(std::time::Duration::from_secs(10), open_read(&c, &fifo, 10))
        .await
        .expect("open-read of a FIFO blocked");
    assert!(
        matches!(r, Response::Status { code, .. } if code != 0),
        "{r:?}"
    );

    let r = open_read(&c, &tmp.path().join("missing"), 10).await;
    let Response::Status { code, .. } = r else {
        panic!("{r:?}")
    };
    assert_eq!(code, skywire_fs::sftp::status::NO_SUCH_FILE);
}
