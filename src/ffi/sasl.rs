//! A small binding to the system's Cyrus libsasl2: only the server calls the SASL link
//! exchange needs (`net/sasl.rs` drives it). One `Conn` per link, used from the reactor
//! thread only.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::ptr;
use std::sync::OnceLock;

const SASL_OK: c_int = 0;
const SASL_CONTINUE: c_int = 1;
const SASL_SUCCESS_DATA: c_uint = 0x0004;
const SASL_USERNAME: c_int = 0;
const SASL_SSF: c_int = 1;
const SASL_MAXOUTBUF: c_int = 2;
const SASL_SSF_EXTERNAL: c_int = 100;
const SASL_SEC_PROPS: c_int = 101;
const SASL_SEC_NOPLAINTEXT: c_uint = 0x0001;
const SASL_SEC_NOANONYMOUS: c_uint = 0x0010;
#[cfg(test)]
const SASL_PATH_TYPE_CONFIG: c_int = 1;

#[repr(C)]
struct SaslConnT {
    _opaque: [u8; 0],
}

/// `sasl_security_properties_t`.
#[repr(C)]
struct SecurityProperties {
    min_ssf: c_uint,
    max_ssf: c_uint,
    maxbufsize: c_uint,
    security_flags: c_uint,
    property_names: *const *const c_char,
    property_values: *const *const c_char,
}

#[link(name = "sasl2")]
extern "C" {
    fn sasl_server_init(callbacks: *const c_void, appname: *const c_char) -> c_int;
    fn sasl_server_new(
        service: *const c_char,
        server_fqdn: *const c_char,
        user_realm: *const c_char,
        iplocalport: *const c_char,
        ipremoteport: *const c_char,
        callbacks: *const c_void,
        flags: c_uint,
        pconn: *mut *mut SaslConnT,
    ) -> c_int;
    fn sasl_dispose(pconn: *mut *mut SaslConnT);
    fn sasl_setprop(conn: *mut SaslConnT, propnum: c_int, value: *const c_void) -> c_int;
    fn sasl_getprop(conn: *mut SaslConnT, propnum: c_int, pvalue: *mut *const c_void) -> c_int;
    fn sasl_listmech(
        conn: *mut SaslConnT,
        user: *const c_char,
        prefix: *const c_char,
        sep: *const c_char,
        suffix: *const c_char,
        result: *mut *const c_char,
        plen: *mut c_uint,
        pcount: *mut c_int,
    ) -> c_int;
    fn sasl_server_start(
        conn: *mut SaslConnT,
        mech: *const c_char,
        clientin: *const c_char,
        clientinlen: c_uint,
        serverout: *mut *const c_char,
        serveroutlen: *mut c_uint,
    ) -> c_int;
    fn sasl_server_step(
        conn: *mut SaslConnT,
        clientin: *const c_char,
        clientinlen: c_uint,
        serverout: *mut *const c_char,
        serveroutlen: *mut c_uint,
    ) -> c_int;
    fn sasl_encode(
        conn: *mut SaslConnT,
        input: *const c_char,
        inputlen: c_uint,
        output: *mut *const c_char,
        outputlen: *mut c_uint,
    ) -> c_int;
    fn sasl_decode(
        conn: *mut SaslConnT,
        input: *const c_char,
        inputlen: c_uint,
        output: *mut *const c_char,
        outputlen: *mut c_uint,
    ) -> c_int;
    fn sasl_errstring(
        code: c_int,
        langlist: *const c_char,
        outlang: *mut *const c_char,
    ) -> *const c_char;
    fn sasl_errdetail(conn: *mut SaslConnT) -> *const c_char;
    #[cfg(test)]
    fn sasl_set_path(path_type: c_int, path: *mut c_char) -> c_int;
}

fn errstring(code: c_int) -> String {
    // SAFETY: sasl_errstring returns a static string for any code (NULL lists are allowed).
    let s = unsafe { sasl_errstring(code, ptr::null(), ptr::null_mut()) };
    if s.is_null() {
        return format!("SASL error {code}");
    }
    // SAFETY: non-null, NUL-terminated, static.
    unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned()
}

/// `sasl_server_init(NULL, appname)`, once per process as the library demands; reads
/// `<appname>.conf` from the SASL config path (`/etc/sasl2`). A later call with another
/// name keeps the first.
pub(crate) fn init(appname: &str) -> Result<(), String> {
    static INIT: OnceLock<(String, Result<(), String>)> = OnceLock::new();
    let (first, result) = INIT.get_or_init(|| {
        let result = CString::new(appname)
            .map_err(|_| "the SASL app name contains a NUL".to_owned())
            .and_then(|name| {
                // SAFETY: no callbacks; `name` outlives the call (libsasl2 copies it).
                match unsafe { sasl_server_init(ptr::null(), name.as_ptr()) } {
                    SASL_OK => Ok(()),
                    e => Err(errstring(e)),
                }
            });
        (appname.to_owned(), result)
    });
    if first != appname {
        crate::log_warn!("SASL was set up for '{first}' already; '{appname}' is ignored");
    }
    result.clone()
}

/// Points libsasl2 at a config directory (tests: never /etc). Before `init`.
#[cfg(test)]
pub(crate) fn set_config_path(dir: &str) {
    let path = CString::new(dir).unwrap();
    // SAFETY: libsasl2 copies the string; called before sasl_server_init.
    let rc = unsafe { sasl_set_path(SASL_PATH_TYPE_CONFIG, path.as_ptr() as *mut c_char) };
    assert_eq!(rc, SASL_OK);
}

/// What a start or step produced: the server's data, and whether the exchange is over.
pub(crate) struct Output {
    pub data: Vec<u8>,
    pub done: bool,
}

/// One server connection context (`sasl_conn_t`).
pub(crate) struct Conn {
    raw: *mut SaslConnT,
}

// SAFETY: a sasl_conn_t is not tied to a thread; `Conn` is used by one thread at a time
// (the reactor's) and owns its context exclusively.
unsafe impl Send for Conn {}

impl Drop for Conn {
    fn drop(&mut self) {
        // SAFETY: `raw` came from sasl_server_new and is disposed of once.
        unsafe { sasl_dispose(&mut self.raw) };
    }
}

fn cstring(s: Option<&str>) -> Result<Option<CString>, String> {
    s.map(|s| CString::new(s).map_err(|_| "a NUL in a SASL argument".to_owned()))
        .transpose()
}

fn opt_ptr(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(ptr::null(), |s| s.as_ptr())
}

impl Conn {
    /// `sasl_server_new("spice", ..)` with the security properties spice-server sets:
    /// over TLS the cipher's bits are the external SSF and no layer is wanted; on a plain
    /// link an SSF of at least 56 is required and plaintext or anonymous mechanisms are
    /// forbidden. `local`/`remote` are "ip;port".
    pub(crate) fn new(
        local: Option<&str>,
        remote: Option<&str>,
        external_ssf: Option<u32>,
    ) -> Result<Conn, String> {
        let (local, remote) = (cstring(local)?, cstring(remote)?);
        let service = c"spice";
        let mut raw = ptr::null_mut();
        // SAFETY: every string is NUL-terminated and outlives the call (libsasl2 copies
        // them); `raw` receives the new context.
        let rc = unsafe {
            sasl_server_new(
                service.as_ptr(),
                ptr::null(),
                ptr::null(),
                opt_ptr(&local),
                opt_ptr(&remote),
                ptr::null(),
                SASL_SUCCESS_DATA,
                &mut raw,
            )
        };
        if rc != SASL_OK || raw.is_null() {
            return Err(format!("sasl_server_new: {}", errstring(rc)));
        }
        let conn = Conn { raw };
        let props = match external_ssf {
            Some(bits) => {
                let ssf: c_uint = bits;
                // SAFETY: SASL_SSF_EXTERNAL takes a pointer to a sasl_ssf_t, copied.
                let rc = unsafe {
                    sasl_setprop(conn.raw, SASL_SSF_EXTERNAL, &ssf as *const c_uint as _)
                };
                conn.check(rc, "external SSF")?;
                SecurityProperties {
                    min_ssf: 0,
                    max_ssf: 0,
                    maxbufsize: 8192,
                    security_flags: 0,
                    property_names: ptr::null(),
                    property_values: ptr::null(),
                }
            }
            None => SecurityProperties {
                min_ssf: 56,
                max_ssf: 100_000,
                maxbufsize: 8192,
                security_flags: SASL_SEC_NOANONYMOUS | SASL_SEC_NOPLAINTEXT,
                property_names: ptr::null(),
                property_values: ptr::null(),
            },
        };
        // SAFETY: SASL_SEC_PROPS takes a sasl_security_properties_t, copied.
        let rc = unsafe { sasl_setprop(conn.raw, SASL_SEC_PROPS, &props as *const _ as _) };
        conn.check(rc, "security properties")?;
        Ok(conn)
    }

    fn detail(&self) -> String {
        // SAFETY: `raw` is live; the detail string lives in the context until its next call.
        let s = unsafe { sasl_errdetail(self.raw) };
        if s.is_null() {
            return String::new();
        }
        // SAFETY: non-null and NUL-terminated.
        unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned()
    }

    fn check(&self, rc: c_int, what: &str) -> Result<(), String> {
        if rc == SASL_OK {
            Ok(())
        } else {
            Err(format!("{what}: {}", self.detail()))
        }
    }

    /// `sasl_listmech` as ",MECH1,MECH2,".
    pub(crate) fn mechanisms(&mut self) -> Result<String, String> {
        let comma = c",";
        let mut list = ptr::null();
        // SAFETY: `raw` is live; the separators are static C strings; `list` receives a
        // string owned by the context.
        let rc = unsafe {
            sasl_listmech(
                self.raw,
                ptr::null(),
                comma.as_ptr(),
                comma.as_ptr(),
                comma.as_ptr(),
                &mut list,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        self.check(rc, "listing mechanisms")?;
        if list.is_null() {
            return Err("no SASL mechanism".into());
        }
        // SAFETY: non-null, NUL-terminated, valid until the next call on `raw`.
        Ok(unsafe { CStr::from_ptr(list) }
            .to_string_lossy()
            .into_owned())
    }

    /// `sasl_server_start`; `client` None is the client's NULL (no initial response).
    pub(crate) fn start(
        &mut self,
        mechanism: &str,
        client: Option<&[u8]>,
    ) -> Result<Output, String> {
        let mech = CString::new(mechanism).map_err(|_| "a NUL in the mechanism".to_owned())?;
        let (data, len) = input(client)?;
        let (mut out, mut out_len) = (ptr::null(), 0);
        // SAFETY: `raw` is live; `data` points at `len` readable bytes (or is NULL);
        // the output is owned by the context and copied below before the next call.
        let rc = unsafe {
            sasl_server_start(self.raw, mech.as_ptr(), data, len, &mut out, &mut out_len)
        };
        self.output(rc, out, out_len)
    }

    /// `sasl_server_step`.
    pub(crate) fn step(&mut self, client: Option<&[u8]>) -> Result<Output, String> {
        let (data, len) = input(client)?;
        let (mut out, mut out_len) = (ptr::null(), 0);
        // SAFETY: as in `start`.
        let rc = unsafe { sasl_server_step(self.raw, data, len, &mut out, &mut out_len) };
        self.output(rc, out, out_len)
    }

    fn output(&self, rc: c_int, out: *const c_char, len: c_uint) -> Result<Output, String> {
        if rc != SASL_OK && rc != SASL_CONTINUE {
            return Err(format!("{} ({})", errstring(rc), self.detail()));
        }
        Ok(Output {
            // SAFETY: libsasl2 returned `len` bytes at `out` (or NULL), valid until the
            // next call on this context.
            data: unsafe { bytes(out, len) }.to_vec(),
            done: rc == SASL_OK,
        })
    }

    fn prop(&self, prop: c_int) -> Option<*const c_void> {
        let mut value = ptr::null();
        // SAFETY: `raw` is live; `value` receives a pointer owned by the context.
        let rc = unsafe { sasl_getprop(self.raw, prop, &mut value) };
        (rc == SASL_OK && !value.is_null()).then_some(value)
    }

    /// The negotiated security layer's strength (0: none).
    pub(crate) fn ssf(&self) -> Option<u32> {
        // SAFETY: SASL_SSF points at a sasl_ssf_t (unsigned) in the context.
        self.prop(SASL_SSF)
            .map(|p| unsafe { *(p as *const c_uint) })
    }

    /// The largest plaintext `encode` takes at once.
    pub(crate) fn max_out(&self) -> Option<u32> {
        // SAFETY: SASL_MAXOUTBUF points at an unsigned in the context.
        self.prop(SASL_MAXOUTBUF)
            .map(|p| unsafe { *(p as *const c_uint) })
    }

    pub(crate) fn username(&self) -> Option<String> {
        // SAFETY: SASL_USERNAME points at a NUL-terminated string in the context.
        self.prop(SASL_USERNAME).map(|p| {
            unsafe { CStr::from_ptr(p as *const c_char) }
                .to_string_lossy()
                .into_owned()
        })
    }

    /// `sasl_encode`: plaintext (at most `max_out` bytes) into the security layer's bytes.
    pub(crate) fn encode(&mut self, plain: &[u8]) -> Result<Vec<u8>, String> {
        let (data, len) = input(Some(plain))?;
        let (mut out, mut out_len) = (ptr::null(), 0);
        // SAFETY: `data` points at `len` bytes; the output is copied before the next call.
        let rc = unsafe { sasl_encode(self.raw, data, len, &mut out, &mut out_len) };
        self.check(rc, "sasl_encode")?;
        // SAFETY: as in `output`.
        Ok(unsafe { bytes(out, out_len) }.to_vec())
    }

    /// `sasl_decode`: the peer's security layer bytes into plaintext (possibly none yet).
    pub(crate) fn decode(&mut self, wire: &[u8]) -> Result<Vec<u8>, String> {
        let (data, len) = input(Some(wire))?;
        let (mut out, mut out_len) = (ptr::null(), 0);
        // SAFETY: as in `encode`.
        let rc = unsafe { sasl_decode(self.raw, data, len, &mut out, &mut out_len) };
        self.check(rc, "sasl_decode")?;
        // SAFETY: as in `output`.
        Ok(unsafe { bytes(out, out_len) }.to_vec())
    }
}

fn input(data: Option<&[u8]>) -> Result<(*const c_char, c_uint), String> {
    match data {
        None => Ok((ptr::null(), 0)),
        Some(d) => {
            let len = c_uint::try_from(d.len()).map_err(|_| "SASL data too long".to_owned())?;
            Ok((d.as_ptr() as *const c_char, len))
        }
    }
}

/// # Safety
/// `ptr` is NULL or points at `len` readable bytes that outlive the returned slice.
unsafe fn bytes<'a>(ptr: *const c_char, len: c_uint) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        return &[];
    }
    // SAFETY: the caller's contract.
    unsafe { std::slice::from_raw_parts(ptr as *const u8, len as usize) }
}
