//! TLS (a raw rustls client, so the test sees the certificate and ALPN the server chose), the
//! HTTPS redirect, BASE_PATH, one server per data directory.

use rustls::pki_types::CertificateDer;

use super::*;

struct Pair {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

fn make_pair() -> Pair {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    Pair {
        cert_pem: ck.cert.pem(),
        key_pem: ck.signing_key.serialize_pem(),
        der: ck.cert.der().clone(),
    }
}

/// Writes the pair as a renewal tool does: new files renamed over the old names.
fn install_pair(dir: &Path, p: &Pair) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(dir.join("cert.tmp"), &p.cert_pem).unwrap();
    std::fs::write(dir.join("key.tmp"), &p.key_pem).unwrap();
    std::fs::rename(dir.join("key.tmp"), &key).unwrap();
    std::fs::rename(dir.join("cert.tmp"), &cert).unwrap();
    (cert, key)
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A verified connection trusting only `roots`, offering h2 and http/1.1.
fn tls_connect(port: u16, roots: &[&CertificateDer<'static>]) -> std::io::Result<Tls> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add((*r).clone()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut s = rustls::StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock)?;
    }
    Ok(s)
}

/// One HTTP/1.1 request on a kept-alive TLS connection; the body must have a Content-Length.
fn tls_get(s: &mut Tls, path: &str) -> Resp {
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\napi-secret: {}\r\n\r\n",
        secret_sha1()
    )
    .unwrap();
    s.flush().unwrap();
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        buf.push(byte[0]);
    }
    let (status, headers) = parse_head(&String::from_utf8(buf).unwrap());
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map(|(_, v)| v.parse().unwrap())
        .unwrap();
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    Resp {
        status,
        headers,
        text: String::from_utf8(body).unwrap(),
        head: String::new(),
    }
}

fn served_cert(s: &Tls) -> CertificateDer<'static> {
    s.conn.peer_certificates().unwrap()[0].clone()
}

#[test]
fn https_is_served_with_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pair = make_pair();
    let (cert, key) = install_pair(dir.path(), &pair);
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let s = TestServer::in_dir(
        &dir.path().join("data"),
        &[("TLS_CERT", &cert), ("TLS_KEY", &key)],
    );
    let mut conn = tls_connect(s.port, &[&pair.der]).unwrap();
    assert_eq!(conn.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    let r = tls_get(&mut conn, "/api/v1/status.json");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["status"], "ok");
    assert_eq!(
        r.header("strict-transport-security").unwrap(),
        "max-age=31536000"
    );
    // Two requests on one connection: keep-alive works through TLS.
    assert_eq!(tls_get(&mut conn, "/api/versions").status, 200);

    // A client that does not trust this certificate is refused at the handshake.
    let stranger = make_pair();
    assert!(tls_connect(s.port, &[&stranger.der]).is_err());

    // `nightlite healthcheck` speaks TLS to it.
    let out = command()
        .arg("healthcheck")
        .env("PORT", s.port.to_string())
        .env("HOSTNAME", "127.0.0.1")
        .env("TLS_CERT", &cert)
        .env("TLS_KEY", &key)
        .output()
        .unwrap();
    assert!(out.status.success(), "healthcheck: {}", stderr(&out));
}

#[test]
fn a_replaced_certificate_is_served_without_a_restart_or_dropped_connections() {
    let dir = tempfile::tempdir().unwrap();
    let first = make_pair();
    let (cert, key) = install_pair(dir.path(), &first);
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let s = TestServer::in_dir(
        &dir.path().join("data"),
        &[("TLS_CERT", &cert), ("TLS_KEY", &key)],
    );
    let mut old = tls_connect(s.port, &[&first.der]).unwrap();
    assert_eq!(tls_get(&mut old, "/api/versions").status, 200);

    // A broken file first: the old certificate stays in use.
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nbroken\n").unwrap();
    let second = make_pair();
    std::thread::sleep(Duration::from_millis(200));
    install_pair(dir.path(), &second);

    let roots = [&first.der, &second.der];
    let deadline = Instant::now() + nightlite::tls::RELOAD_EVERY + Duration::from_secs(5);
    loop {
        // The open connection keeps working meanwhile (and stays within its keep-alive).
        assert_eq!(tls_get(&mut old, "/api/versions").status, 200);
        let fresh = tls_connect(s.port, &roots).unwrap();
        if served_cert(&fresh) == second.der {
            break;
        }
        assert_eq!(served_cert(&fresh), first.der);
        assert!(
            Instant::now() < deadline,
            "the new certificate was not served in time"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(served_cert(&old), first.der);
    assert_eq!(tls_get(&mut old, "/api/versions").status, 200);
}

#[test]
fn plain_http_is_redirected_to_https_as_nightscout_does() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::in_dir(dir.path(), &[]);
    // From loopback without a proxy header: served (see src/https.rs).
    assert_eq!(s.get_auth("/api/v1/status.json").status, 200);
    // A proxy says the client came over plain HTTP: 307 to the same URL on https.
    let r = s.request_auth_json(
        "GET",
        "/api/v1/entries.json?count=2",
        &[("X-Forwarded-Proto", "http"), ("Host", "ns.example.org")],
        None,
    );
    assert_eq!(r.status, 307, "{}", r.text);
    assert_eq!(
        r.header("location").unwrap(),
        "https://ns.example.org/api/v1/entries.json?count=2"
    );
    // Writes are redirected too (307 keeps the method and body).
    let r = s.request_auth_json(
        "POST",
        "/api/v1/entries",
        &[("X-Forwarded-Proto", "http")],
        Some(&sgv(now_ms(), 100)),
    );
    assert_eq!(r.status, 307);
    assert_eq!(s.get_auth("/api/v1/entries.json").json(), json!([]));
    // The proxy terminated TLS: served, with HSTS.
    let r = s.request_auth_json(
        "GET",
        "/api/v1/status.json",
        &[("X-Forwarded-Proto", "https")],
        None,
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("strict-transport-security").unwrap(),
        "max-age=31536000"
    );
    assert_eq!(r.json()["settings"]["insecureUseHttp"], false);
    drop(s);

    let s = TestServer::in_dir(dir.path(), &[("INSECURE_USE_HTTP", "true")]);
    let r = s.request_auth_json(
        "GET",
        "/api/v1/status.json",
        &[("X-Forwarded-Proto", "http")],
        None,
    );
    assert_eq!(r.status, 200);
    assert!(r.header("strict-transport-security").is_none());
}

#[test]
fn base_path_serves_under_the_prefix_only() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::in_dir(dir.path(), &[("BASE_PATH", "/nightscout/")]);
    let r = s.get_auth("/nightscout/api/v1/status.json");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(s.get_auth("/api/v1/status.json").status, 404);
    assert_eq!(s.get_auth("/nightscoutx/api/v1/status.json").status, 404);
    let posted = s.post_json("/nightscout/api/v1/entries", &sgv(now_ms(), 120));
    assert_eq!(posted.status, 200, "{}", posted.text);
    let got = s.get_auth("/nightscout/api/v1/entries.json").json();
    assert_eq!(got[0]["sgv"], 120);
    // Redirects keep the prefix, since they carry the URL as the client sent it.
    let r = s.request_auth_json(
        "GET",
        "/nightscout/api/v1/entries.json",
        &[("X-Forwarded-Proto", "http"), ("Host", "h.example")],
        None,
    );
    assert_eq!(
        r.header("location").unwrap(),
        "https://h.example/nightscout/api/v1/entries.json"
    );
}

#[test]
fn the_viewer_works_under_base_path() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::in_dir(dir.path(), &[("BASE_PATH", "/nightscout")]);
    // The bare prefix sends the browser to the folder, so relative addresses stay inside it.
    let r = s.get_auth("/nightscout?token=abc");
    assert_eq!(r.status, 308, "{}", r.text);
    assert_eq!(r.header("location").unwrap(), "/nightscout/?token=abc");
    let page = s.get_auth("/nightscout/");
    assert_eq!(page.status, 200, "{}", page.text);
    let start = page
        .text
        .find("src=\"static/")
        .expect("a relative script address");
    let script = &page.text[start + 5..];
    let script = &script[..script.find('"').unwrap()];
    // Resolved against /nightscout/, as the browser does.
    let js = s.get_auth(&format!("/nightscout/{script}"));
    assert_eq!(js.status, 200, "{script}: {}", js.text);
    assert!(js.text.contains("import"), "{}", js.text);
    assert!(
        !page.text.contains("=\"/static/"),
        "no address from the host's root"
    );
    assert_eq!(s.get_auth("/static/x/app.js").status, 404);
}

#[test]
fn a_second_server_on_the_same_data_stops_before_announcing_itself() {
    let dir = tempfile::tempdir().unwrap();
    let _first = TestServer::in_dir(dir.path(), &[]);
    let port = free_port();
    let out = command()
        .arg("serve")
        .env("NIGHTLITE_DATA_DIR", dir.path())
        .env("API_SECRET", SECRET)
        .env("PORT", port.to_string())
        .env("HOSTNAME", "127.0.0.1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains("another nightlite server is using the data directory"),
        "{stderr}"
    );
    // The banner would tell the user it is serving, and where, when it is not.
    assert!(!stdout.contains("serving at"), "{stdout}");
}
