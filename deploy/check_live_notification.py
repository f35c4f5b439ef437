"""Check that live notifications reach a browser through the proxy (not a test of the suite).

Logs in as admin in headless Chromium at URL, opens Discuss on a chat with the demo user, has
the demo user post a message over JSON-RPC, and checks that the message shows up in admin's
page without a reload, then takes a screenshot. Odoo 17's web client receives notifications
only through its bus websocket (/websocket, opened by a SharedWorker, so Playwright's page
does not list it: the proxy's access log shows it as "GET /websocket" with status 101).
Needs Playwright (`pip install playwright`) and demo data (user demo / demo).

    python deploy/check_live_notification.py http://127.0.0.1:8069 DB --screenshot shot.png
"""

import argparse
import json
import sys
import time
import urllib.request
from http.cookiejar import CookieJar

from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


class JsonRpc:
    """A logged-in JSON-RPC session (its own cookie jar), through the same URL."""

    def __init__(self, url, db, login, password):
        self.url = url.rstrip("/")
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        self.uid = self.call(
            "/web/session/authenticate", {"db": db, "login": login, "password": password}
        )["uid"]

    def call(self, path, params):
        body = json.dumps({"jsonrpc": "2.0", "method": "call", "params": params}).encode()
        req = urllib.request.Request(self.url + path, body, {"Content-Type": "application/json"})
        answer = json.load(self.opener.open(req, timeout=60))
        if answer.get("error"):
            raise RuntimeError(answer["error"])
        return answer["result"]

    def execute(self, model, method, *args, **kwargs):
        return self.call(
            "/web/dataset/call_kw",
            {"model": model, "method": method, "args": list(args), "kwargs": kwargs},
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("url")
    parser.add_argument("db")
    parser.add_argument("--screenshot", default="live-notification.png")
    parser.add_argument("--browser", default="/usr/bin/chromium")
    args = parser.parse_args()

    admin = JsonRpc(args.url, args.db, "admin", "admin")
    demo = JsonRpc(args.url, args.db, "demo", "demo")
    demo_partner = demo.execute("res.users", "read", [demo.uid], ["partner_id"])[0]["partner_id"]
    chat = admin.execute("discuss.channel", "channel_get", partners_to=[demo_partner[0]])
    text = f"Live notification check {time.strftime('%H:%M:%S')}"

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.browser, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        page.goto(f"{args.url}/web/login?db={args.db}")
        page.fill("input[name=login]", "admin")
        page.fill("input[name=password]", "admin")
        page.click("button[type=submit]")
        page.wait_for_url("**/web**")
        page.goto(
            f"{args.url}/web#action=mail.action_discuss&active_id=discuss.channel_{chat['id']}"
        )
        try:
            page.wait_for_selector(".o-mail-Composer-input", timeout=90000)
        except Exception:
            page.screenshot(path=args.screenshot)
            print(f"Discuss did not open; screenshot: {args.screenshot}, url {page.url}")
            raise
        page.wait_for_timeout(3000)  # let the bus worker connect and subscribe
        posted_at = time.time()
        demo.execute(
            "discuss.channel",
            "message_post",
            chat["id"],
            body=text,
            message_type="comment",
            subtype_xmlid="mail.mt_comment",
        )
        page.get_by_text(text).first.wait_for(timeout=30000)
        delay = time.time() - posted_at
        page.wait_for_timeout(500)
        page.screenshot(path=args.screenshot)
        browser.close()

    print(f"message from demo shown in admin's Discuss {delay:.1f} s after posting, no reload")
    print(f"screenshot: {args.screenshot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
