//! The client (initiator) side of GSSAPI with the Kerberos 5 mechanism, for SSH's
//! gssapi-with-mic and gssapi-keyex (RFC 4462), on the system's MIT krb5 library.
//!
//! `libgssapi_krb5.so.2` is opened at run time (libloading) rather than linked: the addon must
//! still load on a machine without MIT Kerberos, where revtun then refuses GSSAPI with the
//! reason `gssapi_unavailable()` gives. Only the handful of RFC 2744 calls SSH needs are bound,
//! declared here by hand from RFC 2744 §3 (the C bindings), so no krb5 headers are needed to
//! build.
//!
//! A security context is a `GssInitiator` object owned by JS; its GSS handles are released by
//! `dispose()` (or, as a backstop, when the object is collected). `step()` runs
//! gss_init_sec_context on a libuv worker thread, since its first call asks the KDC for a
//! service ticket and may wait on the network; MIC calls are local and run in place.

use core::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, TryLockError};

use napi::bindgen_prelude::{AsyncTask, Buffer, Uint8Array};
use napi::{Env, Error, Result, Status, Task};
use napi_derive::napi;

mod credential;
pub use credential::GssCredential;

const LIBRARY: &str = "libgssapi_krb5.so.2";

type OmUint32 = u32;
type GssName = *mut c_void;
type GssCtx = *mut c_void;
type GssCred = *mut c_void;

/// gss_buffer_desc (RFC 2744 §3.2).
#[repr(C)]
struct GssBuffer {
    length: usize,
    value: *mut c_void,
}

/// gss_OID_desc (RFC 2744 §3.5).
#[repr(C)]
struct Oid {
    length: OmUint32,
    elements: *const c_void,
}

/// gss_OID_set_desc (RFC 2744 §3.6).
#[repr(C)]
struct OidSet {
    count: usize,
    elements: *const Oid,
}

// DER contents (no tag or length) of the OIDs used; RFC 1964 §2.1 and RFC 2744 §4.
/// 1.2.840.113554.1.2.2: the Kerberos 5 mechanism.
const KRB5_MECHANISM: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02];
/// 1.2.840.113554.1.2.1.4: GSS_C_NT_HOSTBASED_SERVICE, "service@host".
const NT_HOSTBASED_SERVICE: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x01, 0x04];
/// 1.2.840.113554.1.2.2.1: GSS_KRB5_NT_PRINCIPAL_NAME, "primary/instance@REALM".
const NT_KRB5_PRINCIPAL: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02, 0x01];

fn oid(der: &'static [u8]) -> Oid {
    Oid {
        length: der.len() as OmUint32,
        elements: der.as_ptr().cast(),
    }
}

const GSS_C_DELEG_FLAG: OmUint32 = 1;
const GSS_C_MUTUAL_FLAG: OmUint32 = 2;
const GSS_C_INTEG_FLAG: OmUint32 = 32;
const GSS_S_CONTINUE_NEEDED: OmUint32 = 1;
const GSS_C_GSS_CODE: i32 = 1;
const GSS_C_MECH_CODE: i32 = 2;
const GSS_C_INDEFINITE: OmUint32 = 0xffff_ffff;
const GSS_C_INITIATE: i32 = 1;

/// RFC 2744 §3.9.1: the calling and routine error fields; the low 16 bits are informatory.
fn is_error(major: OmUint32) -> bool {
    major & 0xffff_0000 != 0
}

type ImportName =
    unsafe extern "C" fn(*mut OmUint32, *const GssBuffer, *const Oid, *mut GssName) -> OmUint32;
type ReleaseName = unsafe extern "C" fn(*mut OmUint32, *mut GssName) -> OmUint32;
type InitSecContext = unsafe extern "C" fn(
    *mut OmUint32,    // minor_status
    GssCred,          // initiator_cred_handle
    *mut GssCtx,      // context_handle
    GssName,          // target_name
    *const Oid,       // mech_type
    OmUint32,         // req_flags
    OmUint32,         // time_req
    *const c_void,    // input_chan_bindings
    *const GssBuffer, // input_token
    *mut *const Oid,  // actual_mech_type
    *mut GssBuffer,   // output_token
    *mut OmUint32,    // ret_flags
    *mut OmUint32,    // time_rec
) -> OmUint32;
type DeleteSecContext =
    unsafe extern "C" fn(*mut OmUint32, *mut GssCtx, *mut GssBuffer) -> OmUint32;
type ReleaseBuffer = unsafe extern "C" fn(*mut OmUint32, *mut GssBuffer) -> OmUint32;
type GetMic = unsafe extern "C" fn(
    *mut OmUint32,
    GssCtx,
    OmUint32,
    *const GssBuffer,
    *mut GssBuffer,
) -> OmUint32;
type VerifyMic = unsafe extern "C" fn(
    *mut OmUint32,
    GssCtx,
    *const GssBuffer,
    *const GssBuffer,
    *mut OmUint32,
) -> OmUint32;
type DisplayStatus = unsafe extern "C" fn(
    *mut OmUint32,
    OmUint32,
    i32,
    *const Oid,
    *mut OmUint32,
    *mut GssBuffer,
) -> OmUint32;
type AcquireCredWithPassword = unsafe extern "C" fn(
    *mut OmUint32,
    GssName,
    *const GssBuffer,
    OmUint32,
    *const OidSet,
    i32,
    *mut GssCred,
    *mut *mut c_void,
    *mut OmUint32,
) -> OmUint32;
type ReleaseCred = unsafe extern "C" fn(*mut OmUint32, *mut GssCred) -> OmUint32;

/// The GSSAPI functions used, looked up once. The library is kept open for the life of the
/// process (it lives in a static), so the function pointers never dangle.
struct Api {
    _library: libloading::Library,
    import_name: ImportName,
    release_name: ReleaseName,
    init_sec_context: InitSecContext,
    delete_sec_context: DeleteSecContext,
    release_buffer: ReleaseBuffer,
    get_mic: GetMic,
    verify_mic: VerifyMic,
    display_status: DisplayStatus,
    release_cred: ReleaseCred,
    /// An MIT extension (gssapi_ext.h), present since krb5 1.8; optional all the same.
    acquire_cred_with_password: Option<AcquireCredWithPassword>,
}

fn open() -> core::result::Result<Api, String> {
    // SAFETY: loading MIT krb5's GSSAPI library runs its initialisers, which only set up
    // its own state (error tables, the mechanism list); it is built to be dlopened.
    let library = unsafe { libloading::Library::new(LIBRARY) }
        .map_err(|e| format!("cannot load {LIBRARY}: {e}"))?;
    macro_rules! function {
        ($name:literal as $ty:ty) => {
            // SAFETY: the symbol is RFC 2744's function of this name, whose C signature `$ty`
            // spells out; the pointer is copied out and stays valid while `library` is open.
            unsafe { library.get::<$ty>($name) }
                .map(|symbol| *symbol)
                .map_err(|e| {
                    format!(
                        "{LIBRARY} has no {}: {e}",
                        String::from_utf8_lossy(&$name[..$name.len() - 1])
                    )
                })
        };
    }
    Ok(Api {
        import_name: function!(b"gss_import_name\0" as ImportName)?,
        release_name: function!(b"gss_release_name\0" as ReleaseName)?,
        init_sec_context: function!(b"gss_init_sec_context\0" as InitSecContext)?,
        delete_sec_context: function!(b"gss_delete_sec_context\0" as DeleteSecContext)?,
        release_buffer: function!(b"gss_release_buffer\0" as ReleaseBuffer)?,
        get_mic: function!(b"gss_get_mic\0" as GetMic)?,
        verify_mic: function!(b"gss_verify_mic\0" as VerifyMic)?,
        display_status: function!(b"gss_display_status\0" as DisplayStatus)?,
        release_cred: function!(b"gss_release_cred\0" as ReleaseCred)?,
        acquire_cred_with_password: function!(
            b"gss_acquire_cred_with_password\0" as AcquireCredWithPassword
        )
        .ok(),
        _library: library,
    })
}

static API: OnceLock<core::result::Result<Api, String>> = OnceLock::new();

fn api() -> Result<&'static Api> {
    API.get_or_init(open)
        .as_ref()
        .map_err(|reason| Error::new(Status::GenericFailure, reason.clone()))
}

/// Why GSSAPI cannot be used here (the library is missing, or lacks a function), or null.
#[napi]
pub fn gssapi_unavailable() -> Option<String> {
    api().err().map(|e| e.reason)
}

/// A buffer the caller owns, lent to GSSAPI as input. gss_buffer_desc has no const form, but
/// RFC 2744 input buffers are only read, so the `*mut` here is never written through.
fn lend(bytes: &[u8]) -> GssBuffer {
    GssBuffer {
        length: bytes.len(),
        value: bytes.as_ptr() as *mut c_void,
    }
}

const fn empty_buffer() -> GssBuffer {
    GssBuffer {
        length: 0,
        value: core::ptr::null_mut(),
    }
}

/// Copies out a buffer GSSAPI allocated, and releases it.
fn take(api: &Api, mut buffer: GssBuffer) -> Vec<u8> {
    let bytes = if buffer.value.is_null() || buffer.length == 0 {
        Vec::new()
    } else {
        // SAFETY: GSSAPI filled `buffer` with `length` readable bytes at `value`.
        unsafe { core::slice::from_raw_parts(buffer.value as *const u8, buffer.length) }.to_vec()
    };
    let mut minor = 0;
    // SAFETY: the buffer came from GSSAPI and is released once.
    unsafe { (api.release_buffer)(&mut minor, &mut buffer) };
    bytes
}

/// gss_display_status's text for one status value, every message of it joined.
fn status_text(api: &Api, value: OmUint32, kind: i32) -> String {
    let mechanism = oid(KRB5_MECHANISM);
    let mut parts = Vec::new();
    let mut message_context: OmUint32 = 0;
    // RFC 2744 §5.11: call again while message_context is non-zero; bounded all the same.
    for _ in 0..8 {
        let mut minor = 0;
        let mut text = empty_buffer();
        // SAFETY: valid out-pointers; the text buffer is released by take().
        let major = unsafe {
            (api.display_status)(
                &mut minor,
                value,
                kind,
                &mechanism,
                &mut message_context,
                &mut text,
            )
        };
        if is_error(major) {
            break;
        }
        parts.push(String::from_utf8_lossy(&take(api, text)).into_owned());
        if message_context == 0 {
            break;
        }
    }
    parts.join("; ")
}

/// The error for a failed call: the routine, then the GSS (major) and mechanism (minor) texts.
fn failure(api: &Api, routine: &str, major: OmUint32, minor: OmUint32) -> Error {
    let mut text = format!(
        "{routine} failed: {}",
        status_text(api, major, GSS_C_GSS_CODE)
    );
    if minor != 0 {
        let mechanism = status_text(api, minor, GSS_C_MECH_CODE);
        if !mechanism.is_empty() {
            text.push_str(": ");
            text.push_str(&mechanism);
        }
    }
    Error::new(
        Status::GenericFailure,
        format!("{text} (major {major:#x}, minor {minor})"),
    )
}

/// The GSS handles of one security context. They are only ever used under `State`'s mutex,
/// one call at a time.
struct Handles {
    context: GssCtx,
    target: GssName,
}

// SAFETY: GSS handles are plain pointers into MIT krb5's heap, which is thread-safe for
// distinct objects; one object may move between threads as long as it is not used by two at
// once, which the Mutex around Handles guarantees.
unsafe impl Send for Handles {}

impl Handles {
    /// gss_delete_sec_context and gss_release_name: each handle once.
    fn release(&mut self) {
        let Ok(api) = api() else { return };
        let mut minor = 0;
        // SAFETY: each handle is GSSAPI's own (or null, which the calls accept) and is set to
        // null after its release, so a second release does nothing.
        unsafe {
            if !self.context.is_null() {
                (api.delete_sec_context)(&mut minor, &mut self.context, core::ptr::null_mut());
            }
            if !self.target.is_null() {
                (api.release_name)(&mut minor, &mut self.target);
            }
        }
        self.context = core::ptr::null_mut();
        self.target = core::ptr::null_mut();
    }
}

impl Drop for Handles {
    fn drop(&mut self) {
        self.release();
    }
}

pub struct State {
    handles: Mutex<Handles>,
    /// dispose() came while a step held the handles: the step releases them as it ends.
    release_when_idle: AtomicBool,
    flags: OmUint32,
    /// Alternate credentials (sshUser and sshPassword), shared with the connection's other
    /// contexts (./gssapi/credential.rs); none: the ticket cache.
    credential: Option<Arc<credential::Shared>>,
}

/// Imports a name of `kind` (RFC 2744 §5.16).
fn import_name(api: &Api, text: &str, kind: &'static [u8]) -> Result<GssName> {
    let name_type = oid(kind);
    let buffer = lend(text.as_bytes());
    let mut name: GssName = core::ptr::null_mut();
    let mut minor = 0;
    // SAFETY: `buffer` and `name_type` outlive the call; `name` receives a new handle.
    let major = unsafe { (api.import_name)(&mut minor, &buffer, &name_type, &mut name) };
    if is_error(major) {
        return Err(failure(
            api,
            &format!("gss_import_name({text})"),
            major,
            minor,
        ));
    }
    Ok(name)
}

/// The result of one gss_init_sec_context call.
#[napi(object)]
pub struct GssStep {
    /// The token to send to the server (may be empty).
    pub token: Buffer,
    /// True once the context is established (GSS_S_COMPLETE).
    pub complete: bool,
    /// The flags the context offers (ret_flags; GSS_C_DELEG_FLAG = 1 when delegation happened).
    pub flags: u32,
}

pub struct StepTask {
    state: Arc<State>,
    input: Option<Vec<u8>>,
}

pub struct StepOutput {
    token: Vec<u8>,
    complete: bool,
    flags: u32,
}

impl StepTask {
    fn run(&self, api: &Api, handles: &mut Handles) -> Result<StepOutput> {
        let credential = match &self.state.credential {
            Some(shared) => shared.get(api)?,
            None => core::ptr::null_mut(),
        };
        let mechanism = oid(KRB5_MECHANISM);
        let input = self.input.as_deref().map(lend);
        let mut output = empty_buffer();
        let mut flags = 0;
        let mut minor = 0;
        // SAFETY: the handles are this context's (under the mutex); `input` borrows
        // self.input, which outlives the call; the output buffer is released by take().
        let major = unsafe {
            (api.init_sec_context)(
                &mut minor,
                credential,
                &mut handles.context,
                handles.target,
                &mechanism,
                self.state.flags,
                0,
                core::ptr::null(),
                input
                    .as_ref()
                    .map_or(core::ptr::null(), |b| b as *const GssBuffer),
                core::ptr::null_mut(),
                &mut output,
                &mut flags,
                core::ptr::null_mut(),
            )
        };
        let token = take(api, output);
        if is_error(major) {
            return Err(failure(api, "gss_init_sec_context", major, minor));
        }
        Ok(StepOutput {
            token,
            complete: major & GSS_S_CONTINUE_NEEDED == 0,
            flags,
        })
    }
}

impl Task for StepTask {
    type Output = StepOutput;
    type JsValue = GssStep;

    fn compute(&mut self) -> Result<StepOutput> {
        let api = api()?;
        let mut handles =
            self.state.handles.lock().map_err(|_| {
                Error::new(Status::GenericFailure, "the GSSAPI context is unusable")
            })?;
        if handles.target.is_null() {
            return Err(Error::new(
                Status::GenericFailure,
                "the GSSAPI context was disposed",
            ));
        }
        let result = self.run(api, &mut handles);
        // A failed context cannot be continued (RFC 2744 §5.19); one disposed meanwhile is done.
        if result.is_err() || self.state.release_when_idle.load(Ordering::SeqCst) {
            handles.release();
        }
        drop(handles);
        // dispose() may have come between the check above and the unlock, and found the lock
        // still held: it set the flag before trying, so looking again after the unlock sees it.
        if self.state.release_when_idle.load(Ordering::SeqCst) {
            if let Ok(mut handles) = self.state.handles.try_lock() {
                handles.release();
            }
        }
        result
    }

    fn resolve(&mut self, _env: Env, output: StepOutput) -> Result<GssStep> {
        Ok(GssStep {
            token: output.token.into(),
            complete: output.complete,
            flags: output.flags,
        })
    }
}

/// One GSSAPI security context, initiated towards one target.
#[napi]
pub struct GssInitiator {
    state: Arc<State>,
}

#[napi]
impl GssInitiator {
    /// `target`: "service@host" (host-based), or with `principal` a Kerberos principal name
    /// ("host/fqdn@REALM"). `delegate` asks for GSS_C_DELEG_FLAG. `credential`: sshUser's
    /// credential from a password (shared by the connection's contexts) instead of the ticket cache.
    #[napi(constructor)]
    pub fn new(
        target: String,
        principal: bool,
        delegate: bool,
        credential: Option<&GssCredential>,
    ) -> Result<Self> {
        let api = api()?;
        let name = import_name(
            api,
            &target,
            if principal {
                NT_KRB5_PRINCIPAL
            } else {
                NT_HOSTBASED_SERVICE
            },
        )?;
        let flags =
            GSS_C_MUTUAL_FLAG | GSS_C_INTEG_FLAG | if delegate { GSS_C_DELEG_FLAG } else { 0 };
        Ok(GssInitiator {
            state: Arc::new(State {
                handles: Mutex::new(Handles {
                    context: core::ptr::null_mut(),
                    target: name,
                }),
                release_when_idle: AtomicBool::new(false),
                flags,
                credential: credential.map(|c| Arc::clone(&c.shared)),
            }),
        })
    }

    /// One gss_init_sec_context call with the server's token (none for the first), on a
    /// worker thread. Rejects with the GSS error text; the context is then released.
    #[napi(ts_return_type = "Promise<GssStep>")]
    pub fn step(&self, input: Option<Uint8Array>) -> AsyncTask<StepTask> {
        AsyncTask::new(StepTask {
            state: Arc::clone(&self.state),
            input: input.map(|bytes| bytes.to_vec()),
        })
    }

    /// gss_get_mic over `data` with the established context.
    #[napi]
    pub fn get_mic(&self, data: Uint8Array) -> Result<Buffer> {
        let api = api()?;
        let handles = self.idle_handles()?;
        let message = lend(&data);
        let mut token = empty_buffer();
        let mut minor = 0;
        // SAFETY: the context handle is this object's, under the mutex; `message` borrows
        // `data` for the call; the token buffer is released by take().
        let major = unsafe { (api.get_mic)(&mut minor, handles.context, 0, &message, &mut token) };
        let mic = take(api, token);
        if is_error(major) {
            return Err(failure(api, "gss_get_mic", major, minor));
        }
        Ok(mic.into())
    }

    /// gss_verify_mic: whether `mic` is the peer's MIC over `data`; throws with the GSS text if not.
    #[napi]
    pub fn verify_mic(&self, data: Uint8Array, mic: Uint8Array) -> Result<()> {
        let api = api()?;
        let handles = self.idle_handles()?;
        let message = lend(&data);
        let token = lend(&mic);
        let mut minor = 0;
        // SAFETY: as in get_mic; both buffers are borrowed for the call.
        let major = unsafe {
            (api.verify_mic)(
                &mut minor,
                handles.context,
                &message,
                &token,
                core::ptr::null_mut(),
            )
        };
        if is_error(major) {
            return Err(failure(api, "gss_verify_mic", major, minor));
        }
        Ok(())
    }

    /// Releases the context and its names now (gss_delete_sec_context); later calls fail.
    /// During a step, the step releases them as it ends.
    #[napi]
    pub fn dispose(&self) {
        self.state.release_when_idle.store(true, Ordering::SeqCst);
        match self.state.handles.try_lock() {
            Ok(mut handles) => handles.release(),
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner().release(),
            Err(TryLockError::WouldBlock) => {}
        }
    }

    /// The handles, for a call made on the JS thread; an error while a step still runs.
    fn idle_handles(&self) -> Result<std::sync::MutexGuard<'_, Handles>> {
        let handles = self.state.handles.try_lock().map_err(|_| {
            Error::new(
                Status::GenericFailure,
                "the GSSAPI context is busy or unusable",
            )
        })?;
        if handles.context.is_null() {
            return Err(Error::new(
                Status::GenericFailure,
                "the GSSAPI context is not established (or was disposed)",
            ));
        }
        Ok(handles)
    }
}
