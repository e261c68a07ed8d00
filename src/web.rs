//! The viewer's files: `web/` compiled into the binary (rust-embed; debug builds read the
//! folder at the first request instead), gzip-compressed once, and served so a phone on a slow
//! link loads them once:
//!
//! - `/` is `web/index.html` with `{{static}}` replaced by `/static/<hash>`, where `<hash>` is
//!   a digest of every file. It is `no-cache` (revalidated by ETag), so a new binary's page is
//!   seen at the next load.
//! - `/clock` is `web/clock.html`, templated the same way: Nightscout's clock faces for a
//!   bedside tablet (`?face=clock|color|bgclock`); `/clock/<face>`, Nightscout's address for
//!   them, redirects there (a page one level down would resolve its relative URLs wrongly).
//! - `/profile`, `/food` and `/admin` (Nightscout's addresses) are `web/profile.html`,
//!   `web/food.html` and `web/admin.html`, templated the same way: the profile editor, the food
//!   database and the administration of subjects and tokens.
//! - `/report`, Nightscout's reports page, redirects to the viewer's Reports view.
//! - `/static/<hash>/<file>` are the other files. Their URL changes whenever any file changes,
//!   so they are `immutable` for a year. JavaScript modules import each other by relative path
//!   and so stay under the same hash without a build step.
//!
//! The page's Content-Security-Policy allows the server's own origin only: no CDN, no fonts
//! or scripts from elsewhere, no inline script.

use std::collections::HashMap;
use std::io::Write;
use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use rust_embed::RustEmbed;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

#[derive(RustEmbed)]
#[folder = "web/"]
struct Files;

/// Allows only this origin (WebSocket included: CSP 3 lets 'self' match ws: and wss: of the
/// same host). `style-src` has no 'unsafe-inline': the page sets styles through the CSSOM only.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self'; font-src 'self'; connect-src 'self'; manifest-src 'self'; media-src 'self'; \
object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const STATIC_PREFIX: &str = "/static/";

struct Asset {
    body: Bytes,
    /// Present when compressing saves bytes.
    gzip: Option<Bytes>,
    content_type: &'static str,
    etag: String,
}

struct Site {
    hash: String,
    index: Asset,
    clock: Asset,
    /// The other pages ([`PAGES`]), by file name.
    pages: HashMap<&'static str, Asset>,
    assets: HashMap<String, Asset>,
}

/// Pages served at `/<name>` from `web/<name>.html` (Nightscout's addresses for them).
const PAGES: [&str; 3] = ["profile", "food", "admin"];

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "json" => "application/json",
        "webmanifest" => "application/manifest+json",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn gzip(data: &[u8]) -> Option<Bytes> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).ok()?;
    let out = enc.finish().ok()?;
    (out.len() < data.len()).then(|| Bytes::from(out))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn asset(name: &str, data: Vec<u8>) -> Asset {
    let content_type = content_type(name);
    let compressible = !matches!(content_type, "image/png" | "image/x-icon");
    let etag = format!("\"{}\"", &hex(&Sha256::digest(&data))[..20]);
    Asset {
        gzip: if compressible { gzip(&data) } else { None },
        body: Bytes::from(data),
        content_type,
        etag,
    }
}

fn build() -> Site {
    let mut names: Vec<String> = Files::iter().map(|n| n.into_owned()).collect();
    names.sort();
    let mut digest = Sha256::new();
    let mut raw: Vec<(String, Vec<u8>)> = Vec::with_capacity(names.len());
    for name in names {
        let Some(file) = Files::get(&name) else {
            continue;
        };
        let data = file.data.into_owned();
        digest.update(name.as_bytes());
        digest.update([0]);
        digest.update((data.len() as u64).to_le_bytes());
        digest.update(&data);
        raw.push((name, data));
    }
    let hash = hex(&digest.finalize())[..16].to_string();
    let mut assets = HashMap::new();
    let mut index = asset("index.html", b"viewer missing".to_vec());
    let mut clock = asset("clock.html", b"clock missing".to_vec());
    let mut pages = HashMap::new();
    let page = |name: &str, data: &[u8]| {
        let text = String::from_utf8_lossy(data)
            .replace("{{static}}", &format!("{}{hash}", &STATIC_PREFIX[1..]));
        asset(name, text.into_bytes())
    };
    for (name, data) in raw {
        if name == "index.html" {
            index = page(&name, &data);
        } else if name == "clock.html" {
            clock = page(&name, &data);
        } else if let Some(p) = PAGES.iter().find(|p| name == format!("{p}.html")) {
            pages.insert(*p, page(&name, &data));
        } else {
            let a = asset(&name, data);
            assets.insert(name, a);
        }
    }
    Site {
        hash,
        index,
        clock,
        pages,
        assets,
    }
}

fn site() -> &'static Site {
    static SITE: OnceLock<Site> = OnceLock::new();
    SITE.get_or_init(build)
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(index))
        .route("/clock", web::get().to(clock))
        .route("/clock/{face}", web::get().to(clock_face))
        .route("/profile", web::get().to(|r| named_page(r, "profile")))
        .route("/food", web::get().to(|r| named_page(r, "food")))
        .route("/admin", web::get().to(|r| named_page(r, "admin")))
        .route("/report", web::get().to(report))
        .route("/static/{asset:.*}", web::get().to(static_file));
}

fn accepts_gzip(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(header::ACCEPT_ENCODING)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|part| {
            let mut it = part.split(';');
            let coding = it.next().unwrap_or("").trim();
            let refused = it.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f64>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

fn not_modified(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            let t = t.trim();
            t == "*" || t.trim_start_matches("W/") == etag
        })
}

fn respond(req: &HttpRequest, a: &Asset, cache: &'static str, is_page: bool) -> HttpResponse {
    let fresh = not_modified(req, &a.etag);
    let mut res = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    res.insert_header((header::CACHE_CONTROL, cache))
        .insert_header((header::ETAG, a.etag.clone()))
        .insert_header((header::VARY, "Accept-Encoding"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    if is_page {
        res.insert_header((header::CONTENT_SECURITY_POLICY, CSP))
            // A `?token=` in the page address must not travel on in a Referer.
            .insert_header((header::REFERRER_POLICY, "no-referrer"));
    }
    if fresh {
        return res.finish();
    }
    res.content_type(a.content_type);
    match &a.gzip {
        // Compressed once, at the first request; the Content-Encoding header keeps the
        // Compress middleware from compressing it again.
        Some(gz) if accepts_gzip(req) => res
            .insert_header((header::CONTENT_ENCODING, "gzip"))
            .body(gz.clone()),
        _ => res.body(a.body.clone()),
    }
}

async fn index(req: HttpRequest) -> HttpResponse {
    respond(&req, &site().index, "no-cache", true)
}

async fn clock(req: HttpRequest) -> HttpResponse {
    respond(&req, &site().clock, "no-cache", true)
}

async fn named_page(req: HttpRequest, name: &'static str) -> Result<HttpResponse> {
    let page = site()
        .pages
        .get(name)
        .ok_or_else(|| Error::NotFound(format!("the viewer has no page '{name}'")))?;
    Ok(respond(&req, page, "no-cache", true))
}

/// Nightscout's clock faces; any other name is a 404 rather than a page that shows nothing.
const CLOCK_FACES: [&str; 3] = ["clock", "color", "bgclock"];

async fn clock_face(face: web::Path<String>) -> Result<HttpResponse> {
    let face = face.into_inner();
    if !CLOCK_FACES.contains(&face.as_str()) {
        return Err(Error::NotFound(format!(
            "no clock face '{face}' (clock, color, bgclock)"
        )));
    }
    // Relative, so it stays under BASE_PATH: /<base>/clock/color → /<base>/clock?face=color.
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, format!("../clock?face={face}")))
        .finish())
}

/// Nightscout's reports address opens the viewer's Reports view (relative: BASE_PATH stays).
async fn report() -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, "./#reports"))
        .finish()
}

async fn static_file(req: HttpRequest, path: web::Path<String>) -> Result<HttpResponse> {
    let s = site();
    let (hash, name) = path.split_once('/').unwrap_or(("", path.as_str()));
    let a = s
        .assets
        .get(name)
        .ok_or_else(|| Error::NotFound(format!("the viewer has no file '{name}'")))?;
    // A page from an older binary asks for an older hash: it gets today's file, which must
    // not be cached under the old name for good.
    let cache = if hash == s.hash {
        IMMUTABLE
    } else {
        "no-cache"
    };
    Ok(respond(&req, a, cache, false))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use actix_web::test as atest;

    /// The hash in the viewer's asset URLs.
    fn asset_hash() -> &'static str {
        &site().hash
    }

    /// Every asset's name, raw size and gzip size (index.html included), for size budgets.
    fn sizes() -> Vec<(String, usize, usize)> {
        let s = site();
        std::iter::once(("index.html".to_string(), &s.index))
            .chain(std::iter::once(("clock.html".to_string(), &s.clock)))
            .chain(s.pages.iter().map(|(n, a)| (format!("{n}.html"), a)))
            .chain(s.assets.iter().map(|(n, a)| (n.clone(), a)))
            .map(|(n, a)| {
                let gz = a.gzip.as_ref().map_or(a.body.len(), Bytes::len);
                (n, a.body.len(), gz)
            })
            .collect()
    }

    /// The issue's budget for everything the viewer downloads.
    const BUDGET_GZIP_BYTES: usize = 150 * 1024;

    #[test]
    fn assets_fit_the_size_budget() {
        let all = sizes();
        let total: usize = all.iter().map(|(_, _, gz)| gz).sum();
        for (n, raw, gz) in &all {
            println!("{n}: {raw} bytes, {gz} gzipped");
        }
        println!("total gzipped: {total} bytes");
        assert!(all.len() > 3, "web/ seems empty: {all:?}");
        assert!(
            total <= BUDGET_GZIP_BYTES,
            "viewer is {total} bytes gzipped"
        );
    }

    #[test]
    fn index_points_at_hashed_assets() {
        let s = site();
        let page = String::from_utf8_lossy(&s.index.body).into_owned();
        assert!(!page.contains("{{static}}"));
        // Relative, so that the page works under BASE_PATH as well as at `/`.
        assert!(page.contains(&format!("\"static/{}/app.js\"", s.hash)));
        // No inline script or style: the CSP forbids them.
        assert!(!page.contains("<style"), "inline style in index.html");
        assert!(
            !page.contains(" style="),
            "inline style attribute in index.html"
        );
        for chunk in page.split("<script").skip(1) {
            assert!(chunk.trim_start().contains("src="), "inline script");
        }
        // Nothing from another origin.
        assert!(!page.contains("http://") && !page.contains("https://"));
    }

    #[actix_web::test]
    async fn clock_faces_redirect_and_unknown_ones_are_404() {
        let app = atest::init_service(actix_web::App::new().configure(routes)).await;
        let get = |uri: &str| atest::TestRequest::get().uri(uri).to_request();
        let res = atest::call_service(&app, get("/clock/bgclock")).await;
        assert_eq!(res.status(), 302);
        assert_eq!(
            res.headers().get(header::LOCATION).unwrap(),
            "../clock?face=bgclock"
        );
        let res = atest::call_service(&app, get("/clock")).await;
        assert_eq!(res.status(), 200);
        assert!(res.headers().contains_key(header::CONTENT_SECURITY_POLICY));
        let body = atest::read_body(res).await;
        assert!(
            String::from_utf8_lossy(&body).contains(&format!("static/{}/clock.js", site().hash))
        );
        let res = atest::call_service(&app, get("/report")).await;
        assert_eq!(res.status(), 302);
        assert_eq!(res.headers().get(header::LOCATION).unwrap(), "./#reports");
        let res = atest::try_call_service(&app, get("/clock/sundial")).await;
        let status = match res {
            Ok(r) => r.status(),
            Err(e) => e.as_response_error().status_code(),
        };
        assert_eq!(status, 404);
    }

    #[actix_web::test]
    async fn profile_food_and_admin_pages() {
        let app = atest::init_service(actix_web::App::new().configure(routes)).await;
        for name in PAGES {
            let res = atest::call_service(
                &app,
                atest::TestRequest::get()
                    .uri(&format!("/{name}"))
                    .to_request(),
            )
            .await;
            assert_eq!(res.status(), 200, "/{name}");
            assert_eq!(
                res.headers().get(header::CONTENT_SECURITY_POLICY).unwrap(),
                CSP
            );
            let body = String::from_utf8_lossy(&atest::read_body(res).await).into_owned();
            assert!(
                body.contains(&format!("static/{}/{name}.js", site().hash)),
                "/{name}: {body}"
            );
            assert!(!body.contains("<style") && !body.contains(" style="));
        }
    }

    #[test]
    fn gzip_negotiation() {
        let req = |v: &str| {
            atest::TestRequest::default()
                .insert_header((header::ACCEPT_ENCODING, v))
                .to_http_request()
        };
        assert!(accepts_gzip(&req("gzip, deflate, br")));
        assert!(accepts_gzip(&req("br;q=1.0, gzip;q=0.8")));
        assert!(!accepts_gzip(&req("gzip;q=0, br")));
        assert!(!accepts_gzip(&req("identity")));
    }

    #[actix_web::test]
    async fn headers_for_page_and_assets() {
        let app = atest::init_service(actix_web::App::new().configure(routes)).await;
        let res = atest::call_service(
            &app,
            atest::TestRequest::get()
                .uri("/")
                .insert_header((header::ACCEPT_ENCODING, "gzip"))
                .to_request(),
        )
        .await;
        assert_eq!(res.status(), 200);
        let h = res.headers();
        assert_eq!(h.get("cache-control").unwrap(), "no-cache");
        assert_eq!(h.get("content-encoding").unwrap(), "gzip");
        assert_eq!(h.get("content-security-policy").unwrap(), CSP);
        let etag = h.get("etag").unwrap().clone();

        let res = atest::call_service(
            &app,
            atest::TestRequest::get()
                .uri("/")
                .insert_header((header::IF_NONE_MATCH, etag))
                .to_request(),
        )
        .await;
        assert_eq!(res.status(), 304);

        let hashed = format!("/static/{}/app.js", asset_hash());
        let res =
            atest::call_service(&app, atest::TestRequest::get().uri(&hashed).to_request()).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers().get("cache-control").unwrap(), IMMUTABLE);
        assert_eq!(
            res.headers().get("content-type").unwrap(),
            "text/javascript; charset=utf-8"
        );

        let res = atest::call_service(
            &app,
            atest::TestRequest::get()
                .uri("/static/0123/app.js")
                .to_request(),
        )
        .await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers().get("cache-control").unwrap(), "no-cache");

        let res = atest::call_service(
            &app,
            atest::TestRequest::get()
                .uri(&format!("/static/{}/nope.js", asset_hash()))
                .to_request(),
        )
        .await;
        assert_eq!(res.status(), 404);
    }
}
