//! Runs m365-sim standalone: `cargo run -p m365-sim -- --port 7072`.

use std::net::SocketAddr;

fn port_from_args() -> Result<u16, String> {
    let mut args = std::env::args().skip(1);
    let mut port = 7072u16;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                let v = args.next().ok_or("--port needs a value")?;
                port = v.parse().map_err(|_| format!("--port: not a port number: {v}"))?;
            }
            "-h" | "--help" => {
                println!("m365-sim [--port <port>]   (default 7072; 0 picks a free port)");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    Ok(port)
}

#[tokio::main]
async fn main() {
    let port = match port_from_args() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("m365-sim: {e}");
            std::process::exit(2);
        }
    };
    let sim = match m365_sim::Sim::start(SocketAddr::from(([127, 0, 0, 1], port))).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("m365-sim: cannot listen on 127.0.0.1:{port}: {e}");
            std::process::exit(1);
        }
    };
    println!("m365-sim listening on {}", sim.url());
    println!("tenant Contoso: {}", m365_sim::directory::CONTOSO);
    println!("GroupMgr client id: {}", m365_sim::directory::GROUPMGR_CLIENT_ID);
    let _ = tokio::signal::ctrl_c().await;
}
