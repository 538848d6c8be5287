//! A static file server for the end-to-end tests: the vendor's download and apt servers, on
//! an address of the test's choosing (loopback, or the lab bridge's so containers reach it).
#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::path::PathBuf;

/// Serves `root` over HTTP at `ip` (any path below it, never above).
pub struct Server {
    pub base: String,
    _runtime: tokio::runtime::Runtime,
}

impl Server {
    pub fn start(root: PathBuf, ip: Ipv4Addr) -> Server {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind((ip, 0)))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route(
            "/{*path}",
            axum::routing::get(
                move |axum::extract::Path(path): axum::extract::Path<String>| {
                    let root = root.clone();
                    async move {
                        let safe = path.split('/').all(|p| !p.is_empty() && p != "..");
                        match std::fs::read(root.join(&path)) {
                            Ok(b) if safe => (axum::http::StatusCode::OK, b),
                            _ => (axum::http::StatusCode::NOT_FOUND, Vec::new()),
                        }
                    }
                },
            ),
        );
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Server {
            base: format!("http://{addr}"),
            _runtime: runtime,
        }
    }
}
