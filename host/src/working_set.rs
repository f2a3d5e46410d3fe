//! The host's resident memory is its working set. Once the host serves,
//! most of its machine code has run for the last time (config and catalog
//! parsing, compiling and linking plugins, store migrations), yet it stays
//! mapped: the kernel faults code in 64 KiB at a time around each page used,
//! and keeps it. Idle, that was 25 MB of a 41 MB host (`make bench`).
//! Released here, the code is read back from the page cache one page at a
//! time as it runs again: a minor fault the first time a path runs.

/// Unmaps the host executable's code and asks the kernel to fault it back
/// one page at a time; the bytes released.
pub fn release_start_up_code() -> std::io::Result<usize> {
    let executable = std::fs::read_link("/proc/self/exe")?;
    let executable = executable.to_string_lossy();
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    let mut released = 0;
    for (start, end) in maps.lines().filter_map(|line| code_of(line, &executable)) {
        let (address, length) = (start as *mut libc::c_void, end - start);
        // SAFETY: the range is this executable's own code, mapped read-only and
        // private from its file, which the kernel keeps from being written while
        // it runs: dropped pages come back unchanged from the file on next use.
        let advised = unsafe {
            libc::madvise(address, length, libc::MADV_RANDOM) == 0
                && libc::madvise(address, length, libc::MADV_DONTNEED) == 0
        };
        if !advised {
            return Err(std::io::Error::last_os_error());
        }
        released += length;
    }
    Ok(released)
}

/// The range of a `/proc/self/maps` line that maps `executable`'s code.
fn code_of(line: &str, executable: &str) -> Option<(usize, usize)> {
    let mut fields = line.split_whitespace();
    let (range, permissions) = (fields.next()?, fields.next()?);
    let path = line.find('/').map(|at| line[at..].trim_end())?;
    if permissions != "r-xp" || path != executable {
        return None;
    }
    let (start, end) = range.split_once('-')?;
    Some((usize::from_str_radix(start, 16).ok()?, usize::from_str_radix(end, 16).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_executables_own_code_is_released() {
        let exe = "/usr/bin/mcp-runtime";
        let code = "5581a2c00000-5581a4e00000 r-xp 00200000 fd:01 1234   /usr/bin/mcp-runtime";
        assert_eq!(code_of(code, exe), Some((0x5581a2c00000, 0x5581a4e00000)));
        let relocated = "5581a4e00000-5581a5000000 r--p 02400000 fd:01 1234   /usr/bin/mcp-runtime";
        assert_eq!(code_of(relocated, exe), None, "read-only data may hold relocations: kept");
        let library = "7f01c0000000-7f01c0100000 r-xp 00000000 fd:01 99   /usr/lib/libssl.so.3";
        assert_eq!(code_of(library, exe), None);
        assert_eq!(code_of("7ffd1000-7ffd3000 r-xp 00000000 00:00 0   [vdso]", exe), None);
    }

    #[test]
    fn code_released_runs_again() {
        let released = release_start_up_code().unwrap();
        assert!(released > 0, "the test binary's code is found");
        // Code runs from the file again, page by page.
        let parsed: serde_json::Value = serde_json::from_str(r#"{"still": "running"}"#).unwrap();
        assert_eq!(parsed["still"], "running");
    }
}
