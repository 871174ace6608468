//! The TCP proxy in front of a subject the harness starts: the webhooks
//! call it, so fault steps reach a program that has no flag for them.

use std::time::Duration;

use anyhow::{Context, Result};

/// The proxy: listening on 127.0.0.1 and passing each connection to the
/// subject's port.
///
/// A delay is latency on the way in: every chunk the client sends reaches
/// the subject that long after it arrived, in order. TLS passes through
/// unread, so the proxy cannot see where a request starts; a client keeps
/// connections alive and, over HTTP/2 (the apiserver's), runs requests side
/// by side on one. Latency on every byte holds every request, on new
/// connections and old, from the moment the delay is set.
pub(super) struct Proxy {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listens on 127.0.0.1:`front` and passes each connection to `port`.
    pub(super) async fn open(
        front: u16,
        port: u16,
        delay: tokio::sync::watch::Receiver<Duration>,
    ) -> Result<Proxy> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", front))
            .await
            .with_context(|| {
                format!("the harness's proxy for the subject cannot listen on 127.0.0.1:{front}")
            })?;
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    accepted = listener.accept() => {
                        let Ok((inbound, _)) = accepted else { continue };
                        connections.spawn(relay(inbound, port, delay.clone()));
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
            drop(listener);
            // Aborts every relay and waits until each has dropped its
            // sockets.
            connections.shutdown().await;
        });
        Ok(Proxy {
            stop: Some(stop),
            task,
        })
    }

    /// Closes the listener and every connection; when this returns, a new
    /// connection is refused and no old one is left open. (An aborted task
    /// drops its sockets only when the runtime next polls it: a client that
    /// sent on a connection in between had it cut mid-request, where a stop
    /// means "connection refused".)
    pub(super) async fn close(mut self) {
        self.stop.take();
        let _ = (&mut self.task).await;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One proxied connection; see [`open_proxy`].
async fn relay(
    inbound: tokio::net::TcpStream,
    port: u16,
    delay: tokio::sync::watch::Receiver<Duration>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(outbound) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return;
    };
    let (mut client_read, mut client_write) = inbound.into_split();
    let (subject_read, mut subject_write) = outbound.into_split();
    // Chunks from the client, each with the time it is due at the subject.
    let (chunks, mut due) =
        tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let read_client = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let at = tokio::time::Instant::now() + *delay.borrow();
                    if chunks.send((at, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
    };
    let write_subject = async move {
        while let Some((at, chunk)) = due.recv().await {
            tokio::time::sleep_until(at).await;
            if subject_write.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = subject_write.shutdown().await;
    };
    let answer = async move {
        let mut subject_read = subject_read;
        let _ = tokio::io::copy(&mut subject_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    };
    tokio::join!(read_client, write_subject, answer);
}
