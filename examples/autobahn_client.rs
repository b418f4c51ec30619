//! Autobahn|Testsuite testee, client role.
//!
//! `cargo run --release [--features tokio] --example autobahn_client -- [--adapter blocking|tokio] ws://127.0.0.1:9001 AGENT`
//!
//! Asks the fuzzing server for the case count, runs every case (echoing each message until
//! the server closes), then asks it to write the reports.

use rfc6455::handshake::ClientRequest;
use rfc6455::{Config, Message, sync};

fn main() {
    let mut adapter = "blocking".to_owned();
    let mut positional = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--adapter" => adapter = args.next().unwrap_or_default(),
            _ => positional.push(arg),
        }
    }
    let base = positional
        .first()
        .cloned()
        .unwrap_or_else(|| "ws://127.0.0.1:9001".to_owned());
    let agent = positional
        .get(1)
        .cloned()
        .unwrap_or_else(|| "rfc6455".to_owned());
    let result = match adapter.as_str() {
        "blocking" => blocking(&base, &agent),
        #[cfg(feature = "tokio")]
        "tokio" => tokio_client(&base, &agent),
        other => Err(format!(
            "unknown adapter {other:?} (tokio needs --features tokio)"
        )),
    };
    if let Err(e) = result {
        eprintln!("autobahn client: {e}");
        std::process::exit(1);
    }
}

fn blocking(base: &str, agent: &str) -> Result<(), String> {
    let open = |path: &str| {
        let request = ClientRequest::new(&format!("{base}{path}")).map_err(|e| e.to_string())?;
        sync::connect_with(request, Config::default())
            .map(|(ws, _)| ws)
            .map_err(|e| e.to_string())
    };
    let mut ws = open("/getCaseCount")?;
    let count: u32 = match ws.recv() {
        Ok(Some(Message::Text(text))) => text.parse().map_err(|_| format!("bad count {text:?}"))?,
        other => return Err(format!("no case count: {other:?}")),
    };
    let _ = ws.recv();
    for case in 1..=count {
        let mut ws = open(&format!("/runCase?case={case}&agent={agent}"))?;
        while let Ok(Some(message)) = ws.recv() {
            if ws.send(message).is_err() {
                break;
            }
        }
    }
    let mut ws = open(&format!("/updateReports?agent={agent}"))?;
    while let Ok(Some(_)) = ws.recv() {}
    println!("ran {count} cases");
    Ok(())
}

#[cfg(feature = "tokio")]
fn tokio_client(base: &str, agent: &str) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let open = |path: String| async move {
            rfc6455::tokio::connect(&format!("{base}{path}"))
                .await
                .map(|(ws, _)| ws)
                .map_err(|e| e.to_string())
        };
        let mut ws = open("/getCaseCount".to_owned()).await?;
        let count: u32 = match ws.recv().await {
            Ok(Some(Message::Text(text))) => {
                text.parse().map_err(|_| format!("bad count {text:?}"))?
            }
            other => return Err(format!("no case count: {other:?}")),
        };
        let _ = ws.recv().await;
        for case in 1..=count {
            let mut ws = open(format!("/runCase?case={case}&agent={agent}")).await?;
            while let Ok(Some(message)) = ws.recv().await {
                if ws.send(message).await.is_err() {
                    break;
                }
            }
        }
        let mut ws = open(format!("/updateReports?agent={agent}")).await?;
        while let Ok(Some(_)) = ws.recv().await {}
        println!("ran {count} cases");
        Ok(())
    })
}
