//! The web UI in headless Chromium (Debian's `chromium` and
//! `chromium-driver`), driven over WebDriver: log in, search, open a
//! repository, sort, switch platforms, delete through the preview, and the
//! read-only banner. Screenshots of every page at desktop and phone widths
//! in both themes go to `target/ui-screenshots/`, to be looked at.

mod common;

use std::time::Duration;

use common::{ALICE, World};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use test_support::{ChildServer, Image, free_port, push_image, push_manifest, require_tool};

/// How long an element may take to appear.
const PATIENCE: Duration = Duration::from_secs(15);

/// chromedriver, and one Chromium session of a size and colour scheme.
struct Browser {
    client: Client,
    _driver: ChildServer,
    name: String,
}

#[derive(Clone, Copy, Debug)]
enum Theme {
    Light,
    Dark,
}

impl Browser {
    /// `None` where Chromium or chromedriver is missing outside CI.
    async fn start(name: &str, width: u32, height: u32, theme: Theme) -> Option<Browser> {
        require_tool("chromium")?;
        let driver = require_tool("chromedriver")?;
        let port = free_port();
        let mut command = driver.command();
        command.arg(format!("--port={port}"));
        let driver = ChildServer::spawn(command, port, "/status", "chromedriver").await;
        let profile = tempfile::tempdir().expect("profile directory");
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--hide-scrollbars".to_owned(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.keep().display()),
        ];
        if let Theme::Dark = theme {
            args.push("--force-dark-mode".to_owned());
            args.push("--blink-settings=preferredColorScheme=0".to_owned());
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({ "binary": "/usr/bin/chromium", "args": args }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&driver.url)
            .await
            .expect("a Chromium session");
        Some(Browser {
            client,
            _driver: driver,
            name: name.to_owned(),
        })
    }

    async fn open(&self, world: &World, path: &str) {
        self.client
            .goto(&format!("{}{path}", world.ui.url))
            .await
            .expect("navigation");
    }

    async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("no {css} on the page: {error}"))
    }

    async fn all(&self, css: &str) -> Vec<Element> {
        self.client
            .find_all(Locator::Css(css))
            .await
            .expect("a query")
    }

    /// Waits until `check` holds for the page, or fails with `what`.
    async fn until<F, Fut>(&self, what: &str, check: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = bool>,
    {
        let started = std::time::Instant::now();
        while !check().await {
            assert!(started.elapsed() < PATIENCE, "gave up waiting: {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The text of `css` once it has any (messages fill in after an answer).
    async fn text(&self, css: &str) -> String {
        let started = std::time::Instant::now();
        loop {
            let text = self.find(css).await.text().await.unwrap_or_default();
            if !text.trim().is_empty() || started.elapsed() > PATIENCE {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Logs in through the form.
    async fn log_in(&self, world: &World, user: (&str, &str)) {
        self.open(world, "/login").await;
        self.find("[data-test=login-user]")
            .await
            .send_keys(user.0)
            .await
            .expect("typing");
        self.find("[data-test=login-password]")
            .await
            .send_keys(user.1)
            .await
            .expect("typing");
        self.find("[data-test=login-submit]")
            .await
            .click()
            .await
            .expect("click");
    }

    /// Saves a screenshot as `target/ui-screenshots/<browser>-<name>.png`.
    async fn screenshot(&self, name: &str) {
        // Let fonts and the last answer settle.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let png = self.client.screenshot().await.expect("a screenshot");
        let directory = test_support::workspace_root().join("target/ui-screenshots");
        std::fs::create_dir_all(&directory).expect("screenshot directory");
        std::fs::write(directory.join(format!("{}-{name}.png", self.name)), png)
            .expect("writing a screenshot");
    }

    async fn close(self) {
        self.client.close().await.expect("closing the session");
    }
}

/// `team/app` with three tags, a cosign-style signature and `latest`
/// pushed in turn, and `team/multi` with an index whose arm64 child is
/// missing.
async fn populated() -> (World, Vec<Image>) {
    let world = World::start().await;
    let pusher = world.pusher();
    let base = &world.registry.url;
    let images: Vec<Image> = [
        "2023-03-01T00:00:00Z",
        "2024-01-01T00:00:00Z",
        "2022-06-01T00:00:00Z",
    ]
    .iter()
    .map(|created| common::described_image(created))
    .collect();
    for (tag, image) in ["alpha", "beta", "gamma"].iter().zip(&images) {
        push_image(&pusher, base, "team/app", tag, image).await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let signature = format!("sha256-{}.sig", images[0].manifest.digest.hex());
    push_image(&pusher, base, "team/app", &signature, &Image::random(1, 64)).await;
    // Pushed times have a resolution of a second: latest is the newest.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    push_manifest(&pusher, base, "team/app", "latest", &images[2].manifest).await;
    let amd = common::described_image("2024-05-01T00:00:00Z");
    world.push_index_missing_arm("team/multi", "v1", &amd).await;
    push_image(&pusher, base, "tools/cli", "1.0", &Image::random(1, 256)).await;
    (world, images)
}

#[tokio::test]
async fn log_in_search_sort_and_delete_a_tag_through_its_preview() {
    let Some(browser) = Browser::start("flow", 1280, 900, Theme::Light).await else {
        return;
    };
    let (world, _) = populated().await;

    browser.log_in(&world, ("alice", "not-her-password")).await;
    let error = browser.text("[data-test=login-error]").await;
    assert!(
        error.contains("password"),
        "a wrong password says so: {error:?}"
    );
    browser.screenshot("login-error").await;

    browser.log_in(&world, ALICE).await;
    browser.find("[data-test=catalog-row]").await;
    let user = browser.text("[data-test=user-name]").await;
    assert!(
        user.ends_with("alice"),
        "the header names the user: {user:?}"
    );
    browser
        .find("[data-test=catalog-search]")
        .await
        .send_keys("MULTI")
        .await
        .expect("typing");
    browser
        .until("the search to narrow the catalog", || async {
            browser.all("[data-test=catalog-row]").await.len() == 1
        })
        .await;
    assert!(
        browser
            .client
            .current_url()
            .await
            .expect("URL")
            .as_str()
            .contains("q=MULTI")
    );

    browser.open(&world, "/repo/team/app").await;
    browser.find("[data-test=tag-row]").await;
    browser
        .find("[data-test=sort-pushed]")
        .await
        .click()
        .await
        .expect("click");
    browser
        .until("the newest push to come first", || async {
            let rows = browser.all("[data-test=tag-row]").await;
            match rows.first() {
                Some(row) => row.attr("data-tag").await.ok().flatten().as_deref() == Some("latest"),
                None => false,
            }
        })
        .await;
    browser.screenshot("repository-by-pushed").await;

    // gamma shares its digest with latest: the preview says latest stays.
    browser
        .find("[data-test=tag-row][data-tag=gamma] [data-test=tag-checkbox]")
        .await
        .click()
        .await
        .expect("click");
    browser
        .find("[data-test=delete-selected]")
        .await
        .click()
        .await
        .expect("click");
    let stays = browser
        .text("[data-test=delete-dialog] [data-test=tags-stay]")
        .await;
    assert!(
        stays.contains("latest"),
        "the preview names the other tag: {stays:?}"
    );
    browser.screenshot("delete-preview").await;
    browser
        .find("[data-test=delete-confirm]")
        .await
        .click()
        .await
        .expect("click");
    browser.find("[data-test=delete-result]").await;
    let (status, tags) = world.get(ALICE, "repositories/team/app/tags").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = tags["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(|tag| tag["name"].as_str())
        .collect();
    assert!(
        !names.contains(&"gamma") && names.contains(&"latest"),
        "{names:?}"
    );
    browser.close().await;
}

#[tokio::test]
async fn a_multi_arch_image_switches_platforms_and_shows_the_missing_one() {
    let Some(browser) = Browser::start("platforms", 1280, 900, Theme::Light).await else {
        return;
    };
    let (world, _) = populated().await;
    browser.log_in(&world, ALICE).await;
    browser.find("[data-test=catalog-row]").await;
    browser.open(&world, "/image/team/multi:v1").await;
    let tabs = {
        browser.find("[data-test=platform-tab]").await;
        browser.all("[data-test=platform-tab]").await
    };
    assert_eq!(tabs.len(), 2);
    assert!(tabs[0].text().await.expect("text").contains("amd64"));
    browser.find("[data-test=layers-table]").await;
    browser.screenshot("image-amd64").await;
    tabs[1].click().await.expect("click");
    let missing = browser.text("[data-test=platform-missing]").await;
    assert!(missing.contains("missing"), "{missing:?}");
    browser.screenshot("image-missing-platform").await;
    // The keyboard moves between tabs too.
    tabs[1].send_keys("\u{E012}").await.expect("arrow left");
    browser
        .find("[data-test=platform-panel] [data-test=layers-table]")
        .await;
    browser.close().await;
}

#[tokio::test]
async fn a_read_only_window_shows_a_banner_saying_until_when() {
    let Some(browser) = Browser::start("read-only", 1280, 900, Theme::Light).await else {
        return;
    };
    let (world, _) = populated().await;
    world.open_window("garbage collection").await;
    browser.log_in(&world, ALICE).await;
    browser.find("[data-test=catalog-row]").await;
    browser
        .until("the banner to show", || async {
            let banner = browser.find("[data-test=read-only-banner]").await;
            banner.is_displayed().await.unwrap_or(false)
        })
        .await;
    let text = browser.text("[data-test=read-only-banner]").await;
    assert!(
        text.contains("read-only") && text.contains("until"),
        "{text:?}"
    );
    browser.screenshot("read-only-banner").await;
    browser.close().await;
}

#[tokio::test]
async fn every_page_at_desktop_and_phone_width_in_both_themes() {
    let (world, images) = populated().await;
    let digest = images[0].manifest.digest.to_string();
    // A collection, so the status page has a report to show.
    world.collect(false).await;
    let pages = [
        ("catalog", "/".to_owned(), "[data-test=catalog-row]"),
        (
            "repository",
            "/repo/team/app".to_owned(),
            "[data-test=tag-row]",
        ),
        (
            "image",
            format!("/image/team/app@{digest}"),
            "[data-test=history-table]",
        ),
        (
            "index",
            "/image/team/multi:v1".to_owned(),
            "[data-test=platform-tab]",
        ),
        ("status", "/status".to_owned(), "[data-test=status-state]"),
        (
            "no-match",
            "/repo/team/app?q=nothing-like-this".to_owned(),
            "[data-test=empty-state]",
        ),
        (
            "not-found",
            "/image/team/app:no-such-tag".to_owned(),
            "[data-test=not-found], [data-test=error-state]",
        ),
    ];
    for (width, height, size) in [(1280, 900, "desktop"), (390, 844, "phone")] {
        for theme in [Theme::Light, Theme::Dark] {
            let name = format!("{size}-{}", format!("{theme:?}").to_lowercase());
            let Some(browser) = Browser::start(&name, width, height, theme).await else {
                return;
            };
            browser.open(&world, "/login").await;
            browser.find("[data-test=login-form]").await;
            browser.screenshot("login").await;
            browser.log_in(&world, ALICE).await;
            browser.find("[data-test=catalog-row]").await;
            for (page, path, ready) in &pages {
                browser.open(&world, path).await;
                browser.find(ready).await;
                browser.screenshot(page).await;
                // Nothing makes the page wider than the screen (tables
                // scroll inside their own box).
                let overflow = browser
                    .client
                    .execute(
                        "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
                        vec![],
                    )
                    .await
                    .expect("script");
                assert!(
                    overflow.as_i64().unwrap_or(0) <= 0,
                    "{name} {page}: the page scrolls sideways by {overflow} px"
                );
            }
            browser.close().await;
        }
    }
}
