//! Parsing and validation of a calling-convention description.

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Attribute, Expr, Ident, LitBool, LitStr, Token, bracketed};

/// The most argument registers a description may name.
pub const MAX_ARGS: usize = 6;

/// A register file the generator knows: which names exist and which the compiler reserves.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Arch {
    /// 32-bit ARM (A32 and T32 share the register names).
    Arm,
    /// AArch64.
    Aarch64,
    /// x86-64.
    X86_64,
}

impl Arch {
    /// `Ok(())` if `name` can be bound in `asm!` on this architecture, else why not.
    pub(crate) fn check_register(self, name: &str) -> Result<(), String> {
        match self {
            Arch::Arm => match name {
                "r0" | "r1" | "r2" | "r3" | "r4" | "r5" | "r8" | "r10" | "r12" | "r14" => Ok(()),
                "r6" => Err(
                    "`r6` is reserved by the compiler (base pointer) and cannot be bound".into(),
                ),
                "r7" => Err("`r7` is the Thumb frame pointer and cannot be bound".into()),
                "r9" => Err("`r9` is the platform register and cannot be bound".into()),
                "r11" => Err("`r11` is the A32 frame pointer and cannot be bound".into()),
                "r13" | "sp" => Err("`sp` cannot carry a hypercall operand".into()),
                "r15" | "pc" => Err("`pc` cannot carry a hypercall operand".into()),
                _ => Err(format!(
                    "unknown register `{name}` for `arch: arm`; expected one of r0-r5, r8, r10, r12, r14"
                )),
            },
            Arch::X86_64 => match name {
                "rax" | "rcx" | "rdx" | "rsi" | "rdi" | "r8" | "r9" | "r10" | "r11" | "r12"
                | "r13" | "r14" | "r15" => Ok(()),
                "rbx" => Err("`rbx` is used internally by LLVM and cannot be bound".into()),
                "rbp" => Err("`rbp` is the frame pointer and cannot be bound".into()),
                "rsp" => Err("`rsp` cannot carry a hypercall operand".into()),
                _ => Err(format!(
                    "unknown register `{name}` for `arch: x86_64`; expected rax, rcx, rdx, rsi, rdi or r8-r15"
                )),
            },
            Arch::Aarch64 => {
                let num = name.strip_prefix('x').and_then(|n| n.parse::<u32>().ok());
                match num {
                    Some(18) => Err("`x18` is the platform register and cannot be bound".into()),
                    Some(19) => Err("`x19` is reserved by the compiler and cannot be bound".into()),
                    Some(29) => Err("`x29` is the frame pointer and cannot be bound".into()),
                    Some(n) if n <= 30 && name == format!("x{n}") => Ok(()),
                    _ => Err(format!(
                        "unknown register `{name}` for `arch: aarch64`; expected x0-x30 \
                         (except x18, x19, x29)"
                    )),
                }
            }
        }
    }

    /// The name used in documentation.
    pub fn display(self) -> &'static str {
        match self {
            Arch::Arm => "32-bit ARM (A32 and T32)",
            Arch::Aarch64 => "AArch64",
            Arch::X86_64 => "x86-64",
        }
    }
}

/// Which registers a call clobbers (beyond the result registers, which it writes).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ClobberRule {
    /// The number register and the argument registers the call uses.
    UsedArgs,
    /// The number register and every argument register, whatever the arity.
    AllArgs,
    /// Nothing: the call writes its result registers and preserves every other register (SMCCC 1.1).
    None,
}

/// The type of a stub's operands: every register-sized value it passes and receives.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Word {
    /// `usize` (results: `isize` for a single result): the register width.
    Usize,
    /// `u32` (`i32`): the 32-bit calls of a convention that has both (SMC32 from AArch64), whose
    /// hypervisor reads only the low halves (`W` registers) and writes 32-bit results.
    U32,
    /// `u64` (`i64`): AArch64 only.
    U64,
}

impl Word {
    /// The unsigned operand type.
    pub fn unsigned(self) -> proc_macro2::TokenStream {
        match self {
            Word::Usize => quote::quote!(usize),
            Word::U32 => quote::quote!(u32),
            Word::U64 => quote::quote!(u64),
        }
    }
    /// The signed type of a single result.
    pub fn signed(self) -> proc_macro2::TokenStream {
        match self {
            Word::Usize => quote::quote!(isize),
            Word::U32 => quote::quote!(i32),
            Word::U64 => quote::quote!(i64),
        }
    }
    /// Bytes per value.
    pub fn bytes(self, arch: Arch) -> usize {
        match (self, arch) {
            (Word::U32, _) | (Word::Usize, Arch::Arm) => 4,
            _ => 8,
        }
    }
}

/// A validated calling-convention description.
pub struct Abi {
    /// Doc comments given on the description, copied to every stub.
    pub docs: Vec<Attribute>,
    pub arch: Arch,
    pub preamble: Option<LitStr>,
    pub trap: LitStr,
    /// The trap's immediate; x86 traps (`syscall`, `vmcall`, `vmmcall`) have none.
    pub tag: Option<Expr>,
    pub number: Ident,
    pub args: Vec<Ident>,
    /// The first result register (the only one of a single-result convention).
    pub ret: Ident,
    /// Every result register, in order; `results[0] == ret`. May include the number register (SMCCC's
    /// function identifier register is also its first result register).
    pub results: Vec<Ident>,
    pub clobbers: ClobberRule,
    pub preserves_flags: bool,
    /// Registers the trap instruction itself overwrites at every arity (x86 `syscall`: `rcx`, `r11`).
    pub also_clobbers: Vec<Ident>,
    /// The hypercall page the out-of-line stubs jump into (x86): its symbol and the bytes per entry.
    pub page: Option<(LitStr, usize)>,
    /// The stubs' name: `{stub}0` … `{stub}N` (default `hypercall`).
    pub stub: Ident,
    /// The operand type.
    pub word: Word,
}

impl Abi {
    /// Whether the stubs return several results (an array) rather than one signed value.
    pub fn multi(&self) -> bool {
        self.results.len() > 1
    }
}

/// Stores `value` into `slot`, or fails if the key was already given.
fn set_once<T>(slot: &mut Option<T>, value: T, key: &Ident) -> syn::Result<()> {
    if slot.is_some() {
        return Err(syn::Error::new(
            key.span(),
            format!("`{key}` is given twice"),
        ));
    }
    *slot = Some(value);
    Ok(())
}

impl Parse for Abi {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let docs = input.call(Attribute::parse_outer)?;
        let (mut arch, mut preamble, mut trap, mut tag) = (None, None, None, None);
        let (mut number, mut args, mut ret, mut clobbers, mut flags) =
            (None, None, None, None, None);
        let (mut also, mut page) = (None, None);
        let (mut results, mut stub, mut word) = (None, None, None);

        while !input.is_empty() {
            let key: Ident = input.call(syn::ext::IdentExt::parse_any)?;
            input.parse::<Token![:]>()?;
            match key.to_string().as_str() {
                "arch" => {
                    let v: Ident = input.parse()?;
                    let a = match v.to_string().as_str() {
                        "arm" => Arch::Arm,
                        "aarch64" => Arch::Aarch64,
                        "x86_64" => Arch::X86_64,
                        other => {
                            return Err(syn::Error::new(
                                v.span(),
                                format!(
                                    "unknown `arch: {other}`; expected `arm`, `aarch64` or `x86_64`"
                                ),
                            ));
                        }
                    };
                    set_once(&mut arch, a, &key)?;
                }
                "preamble" => set_once(&mut preamble, input.parse::<LitStr>()?, &key)?,
                "trap" => set_once(&mut trap, input.parse::<LitStr>()?, &key)?,
                "tag" => set_once(&mut tag, input.parse::<Expr>()?, &key)?,
                "number" => set_once(&mut number, input.parse::<Ident>()?, &key)?,
                "args" => {
                    let content;
                    let bracket = bracketed!(content in input);
                    let list = Punctuated::<Ident, Token![,]>::parse_terminated(&content)?;
                    set_once(
                        &mut args,
                        (bracket.span.join(), list.into_iter().collect()),
                        &key,
                    )?;
                }
                "ret" => set_once(&mut ret, input.parse::<Ident>()?, &key)?,
                "results" => {
                    let content;
                    let bracket = bracketed!(content in input);
                    let list = Punctuated::<Ident, Token![,]>::parse_terminated(&content)?;
                    set_once(
                        &mut results,
                        (bracket.span.join(), list.into_iter().collect::<Vec<_>>()),
                        &key,
                    )?;
                }
                "stub" => set_once(&mut stub, input.parse::<Ident>()?, &key)?,
                "word" => {
                    let v: Ident = input.parse()?;
                    let w = match v.to_string().as_str() {
                        "usize" => Word::Usize,
                        "u32" => Word::U32,
                        "u64" => Word::U64,
                        other => {
                            return Err(syn::Error::new(
                                v.span(),
                                format!(
                                    "unknown `word: {other}`; expected `usize`, `u32` or `u64`"
                                ),
                            ));
                        }
                    };
                    set_once(&mut word, (v.span(), w), &key)?;
                }
                "clobbers" => {
                    let v: Ident = input.parse()?;
                    let rule = match v.to_string().as_str() {
                        "used_args" => ClobberRule::UsedArgs,
                        "all_args" => ClobberRule::AllArgs,
                        "none" => ClobberRule::None,
                        other => {
                            return Err(syn::Error::new(
                                v.span(),
                                format!(
                                    "unknown clobber rule `{other}`; expected `used_args`, `all_args` or \
                                     `none`"
                                ),
                            ));
                        }
                    };
                    set_once(&mut clobbers, rule, &key)?;
                }
                "preserves_flags" => set_once(&mut flags, input.parse::<LitBool>()?.value, &key)?,
                "also_clobbers" => {
                    let content;
                    bracketed!(content in input);
                    let list = Punctuated::<Ident, Token![,]>::parse_terminated(&content)?;
                    set_once(&mut also, list.into_iter().collect::<Vec<_>>(), &key)?;
                }
                "page" => {
                    let symbol: LitStr = input.parse()?;
                    input.parse::<Token![,]>()?;
                    let stride: syn::LitInt = input.parse()?;
                    set_once(&mut page, (symbol, stride.base10_parse::<usize>()?), &key)?;
                }
                other => {
                    return Err(syn::Error::new(
                        key.span(),
                        format!(
                            "unknown key `{other}`; expected one of arch, preamble, trap, tag, number, \
                             args, ret, results, clobbers, preserves_flags, also_clobbers, page, stub, word"
                        ),
                    ));
                }
            }
            if !input.is_empty() {
                input.parse::<Token![;]>()?;
            }
        }

        let missing = |what: &str| {
            syn::Error::new(
                Span::call_site(),
                format!("the description lacks `{what}: …;`"),
            )
        };
        let arch = arch.ok_or_else(|| missing("arch"))?;
        let trap = trap.ok_or_else(|| missing("trap"))?;
        // x86 traps take no immediate; ARM's `hvc` needs one.
        let tag = match (tag, arch) {
            (tag, Arch::X86_64) => tag,
            (Some(t), _) => Some(t),
            (None, _) => return Err(missing("tag")),
        };
        let number = number.ok_or_else(|| missing("number"))?;
        let (args_span, args): (Span, Vec<Ident>) = args.ok_or_else(|| missing("args"))?;
        let results: Vec<Ident> = match (ret, results) {
            (Some(r), None) => vec![r],
            (None, Some((span, list))) => {
                if list.is_empty() {
                    return Err(syn::Error::new(
                        span,
                        "`results` must name at least one register",
                    ));
                }
                list
            }
            (Some(r), Some(_)) => {
                return Err(syn::Error::new(
                    r.span(),
                    "give either `ret` (one result) or `results` (several), not both",
                ));
            }
            (None, None) => return Err(missing("ret")),
        };
        let ret = results[0].clone();
        let clobbers = clobbers.ok_or_else(|| missing("clobbers"))?;

        if trap.value().trim().is_empty() {
            return Err(syn::Error::new(
                trap.span(),
                "`trap` must name an instruction",
            ));
        }
        let check = |r: &Ident| {
            arch.check_register(&r.to_string())
                .map_err(|msg| syn::Error::new(r.span(), msg))
        };
        check(&number)?;
        for (i, r) in results.iter().enumerate() {
            check(r)?;
            if results[..i].contains(r) {
                return Err(syn::Error::new(
                    r.span(),
                    format!("register `{r}` is named twice in `results`"),
                ));
            }
        }
        let word = match word {
            Some((span, Word::U64)) if arch == Arch::Arm => {
                return Err(syn::Error::new(
                    span,
                    "`word: u64` needs 64-bit registers (`arch: aarch64`)",
                ));
            }
            Some((_, w)) => w,
            None => Word::Usize,
        };
        if args.is_empty() {
            return Err(syn::Error::new(
                args_span,
                "`args` must name at least one register",
            ));
        }
        if args.len() > MAX_ARGS {
            return Err(syn::Error::new(
                args[MAX_ARGS].span(),
                format!(
                    "at most {MAX_ARGS} argument registers are supported, this description names {}",
                    args.len()
                ),
            ));
        }
        for (i, r) in args.iter().enumerate() {
            check(r)?;
            if *r == number {
                return Err(syn::Error::new(
                    r.span(),
                    format!("`{r}` is the call-number register and cannot also carry an argument"),
                ));
            }
            if let Some(first) = args[..i].iter().find(|p| *p == r) {
                let mut e =
                    syn::Error::new(r.span(), format!("register `{r}` is named twice in `args`"));
                e.combine(syn::Error::new(first.span(), "first named here"));
                return Err(e);
            }
        }
        // A result may come back in the call-number register (x86: `rax`; SMCCC's function identifier
        // register is its first result register), never in a register the trap itself overwrites.
        let also = also.unwrap_or_default();
        for r in &also {
            check(r)?;
            if *r == number || results.contains(r) || args.contains(r) {
                return Err(syn::Error::new(
                    r.span(),
                    format!("`{r}` carries an operand and cannot also be in `also_clobbers`"),
                ));
            }
        }

        Ok(Abi {
            docs,
            arch,
            preamble,
            trap,
            tag,
            number,
            args,
            ret,
            results,
            clobbers,
            preserves_flags: flags.unwrap_or(false),
            also_clobbers: also,
            page,
            stub: stub.unwrap_or_else(|| Ident::new("hypercall", Span::call_site())),
            word,
        })
    }
}
