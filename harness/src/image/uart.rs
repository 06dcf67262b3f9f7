//! Output on the PL011 UART of QEMU's `virt` machine (the MMU is off at EL1 and EL2: physical address).

use core::fmt;

const UART_DR: *mut u32 = 0x0900_0000 as *mut u32;
const UART_FR: *const u32 = 0x0900_0018 as *const u32;

/// The console.
pub struct Uart;

impl Uart {
    fn put(b: u8) {
        // SAFETY: the PL011 of `virt` is at this address, mapped as Device memory (the MMU is off); the
        // accesses are aligned 32-bit register accesses.
        unsafe {
            while core::ptr::read_volatile(UART_FR) & (1 << 5) != 0 {}
            core::ptr::write_volatile(UART_DR, u32::from(b));
        }
    }
}

impl fmt::Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            Self::put(b);
        }
        Ok(())
    }
}

/// `println!` to the UART.
macro_rules! say {
    ($($t:tt)*) => {{
        use core::fmt::Write as _;
        let _ = writeln!($crate::image::uart::Uart, $($t)*);
    }};
}
pub(crate) use say;

/// Writes without a newline.
pub fn raw(args: fmt::Arguments) {
    use fmt::Write as _;
    let _ = Uart.write_fmt(args);
}
