"""spice-html5 in headless chromium (Selenium), for the WebSocket tests.

    with Html5Client(tmp_path, cert=None) as b:        # cert: (cert.pem, key.pem) for https/wss
        b.open(spice_port)                               # spice_auto.html?host=...&port=...
        w, h = b.wait_primary()
        img = b.screenshot()                             # the primary canvas, a PIL image
        b.type_keys("a")

spice_auto.html connects to ws://host:port (wss:// when the page itself came over https),
so the TLS case serves the page over https with the SPICE server's certificate. chromium
trusts that certificate only by its public key's hash (`--ignore-certificate-errors-spki-list`,
which needs its own `--user-data-dir`): no certificate error is ignored wholesale."""
import base64
import functools
import http.server
import io
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
from pathlib import Path

HTML5_DIR = Path("/usr/share/spice-html5")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def available():
    """None when everything is installed, else what is missing."""
    missing = [p for p in (HTML5_DIR / "spice_auto.html", Path(CHROMIUM), Path(CHROMEDRIVER))
               if not p.exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("python3-selenium")
    return ", ".join(map(str, missing)) or None


def spki_hash(cert_pem):
    """base64(SHA-256(SubjectPublicKeyInfo)) of a certificate, as chromium's
    --ignore-certificate-errors-spki-list takes it."""
    pub = subprocess.run(["openssl", "x509", "-in", str(cert_pem), "-pubkey", "-noout"],
                         check=True, capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub,
                         check=True, capture_output=True).stdout
    import hashlib
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class Html5Client:
    def __init__(self, workdir, cert=None):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cert = cert
        self.httpd = None
        self.driver = None

    def __enter__(self):
        handler = functools.partial(_Quiet, directory=str(HTML5_DIR))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        if self.cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(self.cert[0]), str(self.cert[1]))
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        profile = tempfile.mkdtemp(prefix="chromium-", dir=self.dir)
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--window-size=1280,1000", f"--user-data-dir={profile}",
                  "--no-first-run", "--disable-extensions", "--disable-background-networking"):
            opts.add_argument(a)
        if self.cert:
            opts.add_argument(f"--ignore-certificate-errors-spki-list={spki_hash(self.cert[0])}")
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        service = Service(CHROMEDRIVER, log_output=str(self.dir / "chromedriver.log"))
        self.driver = webdriver.Chrome(service=service, options=opts)
        self.driver.set_script_timeout(30)
        return self

    def __exit__(self, *exc):
        try:
            self.save_console()
        finally:
            if self.driver:
                self.driver.quit()
            if self.httpd:
                self.httpd.shutdown()
                self.httpd.server_close()

    def url(self, spice_port):
        scheme = "https" if self.cert else "http"
        return (f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}/spice_auto.html"
                f"?host=127.0.0.1&port={spice_port}")

    def open(self, spice_port):
        self.driver.get(self.url(spice_port))

    def console(self):
        try:
            return [e["message"] for e in self.driver.get_log("browser")]
        except Exception:
            return []

    def save_console(self):
        if self.driver:
            (self.dir / "browser-console.log").write_text("\n".join(self.console()) + "\n")

    def primary(self):
        """(width, height) of the primary canvas, or None."""
        return self.driver.execute_script(
            "var c = document.querySelector('#spice-screen canvas');"
            "return c ? [c.width, c.height] : null;")

    def wait_primary(self, size=None, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            p = self.primary()
            if p and (size is None or tuple(p) == tuple(size)):
                return tuple(p)
            if time.monotonic() > deadline:
                self.save_console()
                raise TimeoutError(f"no primary canvas {size or ''} within {timeout}s "
                                   f"(have {p}); console in {self.dir}")
            time.sleep(0.2)

    def screenshot(self):
        """The primary canvas's pixels (PNG through toDataURL: lossless), as PIL RGB."""
        from PIL import Image
        url = self.driver.execute_script(
            "return document.querySelector('#spice-screen canvas').toDataURL('image/png');")
        data = base64.b64decode(url.split(",", 1)[1])
        return Image.open(io.BytesIO(data)).convert("RGB")

    def wait_quiet(self, quiet=0.5, timeout=15):
        """Waits until two screenshots `quiet` seconds apart are equal; returns the last."""
        deadline = time.monotonic() + timeout
        prev = self.screenshot()
        while True:
            time.sleep(quiet)
            cur = self.screenshot()
            if cur.tobytes() == prev.tobytes() or time.monotonic() > deadline:
                return cur
            prev = cur

    def type_keys(self, text):
        """Keys typed into the focused SPICE canvas (spice-html5 listens there)."""
        from selenium.webdriver.common.by import By
        canvas = self.driver.find_element(By.CSS_SELECTOR, "#spice-screen canvas")
        canvas.send_keys(text)

    def inputs_ready(self):
        return self.driver.execute_script(
            "var c = document.querySelector('#spice-screen canvas');"
            "return !!(c && c.sc && c.sc.inputs && c.sc.inputs.state === 'ready');")
