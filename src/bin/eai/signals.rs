//! Signals (Linux): SIGINT, SIGTERM and SIGHUP get a minimal handler that only writes the
//! signal number to a pipe (async-signal-safe); one thread of ours reads the pipe and does the
//! work in ordinary code. Handlers, unlike a blocked mask, are not inherited by the measured
//! command: exec resets them to the default. A signal ignored when eai starts (SIGINT under a
//! non-interactive shell's `&`) stays ignored.
//!
//! - `eai measure`: the signal is recorded (the report and trace are flagged `Interrupted`)
//!   and forwarded to the command — to its process group when it has one of its own, and to
//!   every process it started that left the group. eai then waits for the command, writes
//!   its outputs, and exits 128 + the signal. eai is made a child subreaper, so processes
//!   the command leaves behind stay eai's descendants and are waited for.
//! - every other subcommand: temporary outputs are removed and eai exits 128 + the signal at
//!   once (`_exit`: no C exit handlers run while the main thread may be using the GPU).
//!
//! Elsewhere (other Unixes, Windows) none of this is installed: signals act as by default.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use eai::power::CommandControl;

/// Shared with `measure_command_with`: the command's pid and the signal received.
pub(crate) static CONTROL: CommandControl = CommandControl::new();
static MEASURING: AtomicBool = AtomicBool::new(false);
static SHARED_GROUP: AtomicBool = AtomicBool::new(false);
static PIPE_W: AtomicI32 = AtomicI32::new(-1);

const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// The handler: two bytes to the pipe, the signal and whether a terminal sent it.
extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let fd = PIPE_W.load(Ordering::Relaxed);
    if fd < 0 {
        return;
    }
    // SAFETY: the kernel passes a valid siginfo_t to an SA_SIGINFO handler.
    let code = if info.is_null() { 0 } else { unsafe { (*info).si_code } };
    let msg = [sig as u8, u8::from(code == libc::SI_KERNEL)];
    // SAFETY: write(2) is async-signal-safe; `msg` is a valid 2-byte buffer.
    unsafe {
        libc::write(fd, msg.as_ptr().cast(), 2);
    }
}

/// Installs the handlers and starts the thread that acts on them.
///
/// `measure`: forward to the command instead of exiting; `shared_group`: the command stays
/// in eai's process group (stdin is a terminal: it keeps the terminal, and a terminal's
/// Ctrl-C reaches it directly, so only signals sent to eai alone are forwarded).
pub(crate) fn install(measure: bool, shared_group: bool) {
    MEASURING.store(measure, Ordering::SeqCst);
    SHARED_GROUP.store(shared_group, Ordering::SeqCst);
    let mut fds = [-1 as libc::c_int; 2];
    // SAFETY: pipe2 writes two descriptors into the array it is given.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return;
    }
    let (rd, wr) = (fds[0], fds[1]);
    PIPE_W.store(wr, Ordering::SeqCst);
    let spawned = std::thread::Builder::new().name("eai-signals".into()).spawn(move || {
        let mut msg = [0u8; 2];
        loop {
            // SAFETY: `rd` is our pipe's read end; `msg` is a valid 2-byte buffer.
            let n = unsafe { libc::read(rd, msg.as_mut_ptr().cast(), 2) };
            if n != 2 {
                if n < 0
                    && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
                {
                    continue;
                }
                return;
            }
            let (sig, from_terminal) = (libc::c_int::from(msg[0]), msg[1] == 1);
            if MEASURING.load(Ordering::SeqCst) {
                forward(sig, from_terminal);
            } else {
                let n = eai::outputs::remove_staged();
                eprintln!(
                    "eai: interrupted by signal {sig}{}",
                    if n > 0 {
                        format!("; removed {n} temporary output file(s)")
                    } else {
                        "".into()
                    }
                );
                exit_now(128 + sig);
            }
        }
    });
    if spawned.is_err() {
        return;
    }
    for sig in SIGNALS {
        // SAFETY: sigaction with a zeroed struct, then the fields set below, is the documented
        // use; `on_signal` only does async-signal-safe work.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) == 0
                && old.sa_sigaction == libc::SIG_IGN
            {
                continue; // ignored by whoever started us: keep it so
            }
            let mut sa: libc::sigaction = std::mem::zeroed();
            let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                on_signal;
            sa.sa_sigaction = handler as libc::sighandler_t;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
    if measure {
        // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes plain integer arguments.
        unsafe {
            libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0);
        }
    }
}

/// Ends the process from the signal thread without running the C library's exit handlers.
///
/// `std::process::exit` runs `atexit` handlers and shared-library destructors, among them the
/// CUDA driver's and cuBLAS's teardown, while the main thread may still be launching kernels on
/// the context being torn down: on the GPU machine an `eai study --cuda 0` sent SIGTERM mid-window
/// ended in SIGSEGV (exit 139) instead of 143 (soak of 2026-12-06,
/// `docs/results/session7.md`). `_exit` leaves the teardown to the kernel, which releases the
/// device context with the process. Our own buffered output is flushed first; the journal and
/// the outputs are already synced or removed (staged files) by then.
fn exit_now(code: i32) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: _exit takes a plain integer and does not return.
    unsafe { libc::_exit(code) }
}

fn forward(sig: libc::c_int, from_terminal: bool) {
    CONTROL.interrupt(sig);
    let shared = SHARED_GROUP.load(Ordering::SeqCst);
    // A terminal's signal went to the whole foreground group, the command included.
    if shared && from_terminal {
        return;
    }
    // The command may not have started yet (idle baseline): forward once it has.
    let pid = loop {
        if let Some(p) = CONTROL.child() {
            break p;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let Ok(pid) = libc::pid_t::try_from(pid) else { return };
    // SAFETY: kill takes plain integers; a negative pid names a process group.
    unsafe {
        libc::kill(if shared { pid } else { -pid }, sig);
    }
    let group = (!shared).then_some(pid.unsigned_abs());
    // Those that left the command's group (the group itself has just been signalled).
    for p in eai::power::descendants(group).into_iter().filter(|p| shared || Some(p.group) != group)
    {
        if let Ok(q) = libc::pid_t::try_from(p.pid) {
            // SAFETY: as above; a process that is already gone makes kill fail harmlessly.
            unsafe {
                libc::kill(q, sig);
            }
        }
    }
}
