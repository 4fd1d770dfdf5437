//! app-bench: what the app protocol costs. One direction of bulk bytes and dial+echo latency
//! through an app conn (SDK `dial` on visor A's app server -> dmsg -> visor B's app server ->
//! SDK `accept`: a local TCP pipe on both ends) against the same bytes over the raw dmsg stream
//! between the two dmsg clients, all in this process (discovery + relay on 127.0.0.1).
//!
//! `cargo run --release -p skywire-bench --bin app-bench [-- --mib 256 --secs 3 --rounds 3 --opens 200]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use skywire_app::{Client, Net, ProcConfig};
use skywire_bench::{LocalRelay, Throughput, read_side, write_side};
use skywire_visor::appserver::{AppServer, Registration};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Args {
    mib: u64,
    secs: u64,
    rounds: usize,
    opens: usize,
}

fn args() -> Result<Args> {
    let mut a = Args {
        mib: 256,
        secs: 3,
        rounds: 3,
        opens: 200,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut it = v.iter();
    while let Some(flag) = it.next() {
        let val = it.next().context("flag without a value")?;
        match flag.as_str() {
            "--mib" => a.mib = val.parse()?,
            "--secs" => a.secs = val.parse()?,
            "--rounds" => a.rounds = val.parse()?,
            "--opens" => a.opens = val.parse()?,
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(a)
}

async fn sdk(server: &Arc<AppServer>, reg: &Registration) -> Result<Client> {
    let cfg = ProcConfig {
        app_name: reg.name().to_owned(),
        app_server_addr: server.local_addr().to_string(),
        proc_key: reg.key(),
        proc_args: vec![],
        proc_envs: None,
        proc_work_dir: String::new(),
        visor_pk: server.visor_pk(),
        routing_port: 0,
        binary_loc: String::new(),
        log_db_loc: String::new(),
        log_store_path: String::new(),
    };
    Ok(Client::connect(cfg).await?)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let a = args()?;
    let max = a.mib * 1024 * 1024;
    let time = Duration::from_secs(a.secs);
    let relay = LocalRelay::start(Default::default(), Duration::from_secs(10)).await?;
    let ca = relay.client(Default::default())?;
    let cb = relay.client(Default::default())?;
    ca.ready(Duration::from_secs(10)).await?;
    cb.ready(Duration::from_secs(10)).await?;
    let sa = AppServer::bind("127.0.0.1:0", ca.pk(), ca.clone()).await?;
    let sb = AppServer::bind("127.0.0.1:0", cb.pk(), cb.clone()).await?;
    let ra = sa.register("bench-a");
    let rb = sb.register("bench-b");
    let app_a = sdk(&sa, &ra).await?;
    let app_b = sdk(&sb, &rb).await?;

    // Raw dmsg sink on B:100, app sink on B:101 (through B's app server).
    let mut raw_l = cb.listen(100)?;
    let app_l = app_b.listen(Net::Dmsg, 101).await?;
    // Echo ports for latency: raw B:102, app B:103.
    let mut raw_echo = cb.listen(102)?;
    let app_echo = app_b.listen(Net::Dmsg, 103).await?;

    let (mut raw_rates, mut app_rates) = (Vec::new(), Vec::new());
    for round in 0..a.rounds {
        // Raw dmsg stream.
        let s = ca
            .dial(skywire_dmsg::Addr::new(cb.pk(), 100))
            .await
            .context("raw dial")?;
        let start = Instant::now();
        let w = tokio::spawn(write_side(s, max, time));
        let r = raw_l.accept().await.context("raw accept")?;
        let t: Throughput = read_side(r, start, max).await?;
        w.await??;
        raw_rates.push(t.mib_s());

        // App conn (SDK on both ends).
        let start = Instant::now();
        let conn = app_a.dial(Net::Dmsg, cb.pk(), 101).await?;
        let w = tokio::spawn(write_side(conn, max, time));
        let (r, _) = app_l.accept().await?;
        let t = read_side(r, start, max).await?;
        w.await??;
        app_rates.push(t.mib_s());
        eprintln!(
            "round {}: raw {:.0} MiB/s, app {:.0} MiB/s",
            round + 1,
            raw_rates[round],
            app_rates[round]
        );
    }

    // Latency: dial + 1-byte echo.
    tokio::spawn(async move {
        while let Some(mut s) = raw_echo.accept().await {
            tokio::spawn(async move {
                let mut b = [0u8; 1];
                if s.read_exact(&mut b).await.is_ok() {
                    let _ = s.write_all(&b).await;
                }
            });
        }
    });
    tokio::spawn(async move {
        while let Ok((mut c, _)) = app_echo.accept().await {
            tokio::spawn(async move {
                let mut b = [0u8; 1];
                if c.read_exact(&mut b).await.is_ok() {
                    let _ = c.write_all(&b).await;
                }
            });
        }
    });
    let (mut raw_lat, mut app_lat) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    for _ in 0..a.opens {
        if Instant::now() > deadline {
            break;
        }
        let t = Instant::now();
        let mut s = ca.dial(skywire_dmsg::Addr::new(cb.pk(), 102)).await?;
        s.write_all(b"x").await?;
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await?;
        raw_lat.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let mut c = app_a.dial(Net::Dmsg, cb.pk(), 103).await?;
        c.write_all(b"x").await?;
        c.read_exact(&mut b).await?;
        app_lat.push(t.elapsed().as_secs_f64() * 1e3);
    }

    let (raw, app) = (median(raw_rates), median(app_rates));
    println!(
        "## app-bench ({} MiB or {} s per run, median of {} runs; {} opens)\n",
        a.mib,
        a.secs,
        a.rounds,
        raw_lat.len()
    );
    println!("| path | MiB/s | vs raw dmsg | dial+echo p50 ms | p90 ms | p50 vs raw |");
    println!("|---|---|---|---|---|---|");
    let (rp50, rp90) = (pct(&mut raw_lat, 0.5), pct(&mut raw_lat, 0.9));
    let (ap50, ap90) = (pct(&mut app_lat, 0.5), pct(&mut app_lat, 0.9));
    println!("| raw dmsg stream (in-process) | {raw:.0} | 1.00x | {rp50:.2} | {rp90:.2} | 1.00x |");
    println!(
        "| app conn (SDK -> app server -> dmsg -> app server -> SDK) | {app:.0} | {:.2}x | {ap50:.2} | {ap90:.2} | {:.2}x |",
        app / raw,
        ap50 / rp50
    );
    ca.close().await;
    cb.close().await;
    Ok(())
}
