//! `hubbub`: read the config, start logging, serve until Ctrl-C or SIGTERM.

use hubbub::{config::Config, startup::Application};

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            // Straight to stderr, not through the logger: RUST_LOG may be filtering it,
            // and this is the one message the operator must see.
            eprintln!("hubbub: {err}");
            std::process::exit(2);
        }
    };
    let bind = config.bind_address();
    // Listen for signals before announcing the port, so a SIGTERM right after start-up
    // already shuts down gracefully.
    let signal = shutdown_signal();
    let app = Application::build(config).map_err(|err| {
        log::error!("cannot listen on {bind}: {err}");
        err
    })?;
    log::info!("listening on http://{}:{}", host_of(&bind), app.port());
    let controller = app.controller();
    actix_web::rt::spawn(async move {
        signal.await;
        controller.shutdown().await;
    });
    app.run_until_stopped().await
}

fn host_of(bind: &str) -> &str {
    bind.rsplit_once(':').map_or(bind, |(host, _)| host)
}

/// Ctrl-C (SIGINT) and SIGTERM (what service managers and `docker stop` send). On Unix
/// the handlers are installed when this is called, not when the future is first polled.
#[cfg(unix)]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use actix_web::rt::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt());
    let mut terminate = signal(SignalKind::terminate());
    async move {
        match (&mut interrupt, &mut terminate) {
            (Ok(interrupt), Ok(terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            }
            _ => {
                log::warn!("cannot install signal handlers; falling back to Ctrl-C only");
                let _ = actix_web::rt::signal::ctrl_c().await;
            }
        }
    }
}

#[cfg(not(unix))]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    async {
        let _ = actix_web::rt::signal::ctrl_c().await;
    }
}
