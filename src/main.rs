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
    let app = Application::build(config).map_err(|err| {
        log::error!("cannot listen on {bind}: {err}");
        err
    })?;
    log::info!("listening on http://{}:{}", host_of(&bind), app.port());
    let controller = app.controller();
    actix_web::rt::spawn(async move {
        wait_for_signal().await;
        controller.shutdown().await;
    });
    app.run_until_stopped().await
}

fn host_of(bind: &str) -> &str {
    bind.rsplit_once(':').map_or(bind, |(host, _)| host)
}

/// Ctrl-C everywhere; SIGTERM too on Unix (what service managers and `docker stop` send).
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use actix_web::rt::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = actix_web::rt::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
                return;
            }
            Err(err) => log::warn!("cannot listen for SIGTERM: {err}"),
        }
    }
    let _ = actix_web::rt::signal::ctrl_c().await;
}
