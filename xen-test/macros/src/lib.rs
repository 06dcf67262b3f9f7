//! `#[xen_test::tests]`: the attribute of [`xen-test`](https://docs.rs/xen-test), used through that crate.
//!
//! On a module, it removes the `#[test]`, `#[should_panic]` and `#[ignore]` attributes of the module's
//! functions (without the compiler's test harness, `#[test]` functions would be compiled out) and adds to
//! the module:
//!
//! - a `static` table of the tests (`xen_test::Test`), in source order;
//! - `unsafe extern "C" fn guest_main(device_tree: usize) -> !`, the function the unikernel's entry code
//!   calls with the device tree's address, which runs the table (`xen_test::__private::start`);
//! - the `#[panic_handler]`, which reports a panic as the current test's failure and goes on with the next
//!   test (`xen_test::__private::panicked`).
//!
//! A test function takes no arguments, has no generics, is not `async` and returns `()`; anything else is a
//! compile error on that function.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::quote;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, Item, ItemMod, Lit, Meta, ReturnType, parse_macro_input};

/// Collects the `#[test]` functions of a module into a test run on Xen; see the
/// [crate documentation](crate).
#[proc_macro_attribute]
pub fn tests(args: TokenStream, input: TokenStream) -> TokenStream {
    let args = TokenStream2::from(args);
    let module = parse_macro_input!(input as ItemMod);
    match expand(args, module) {
        Ok(t) => t.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// One collected test.
struct Collected {
    ident: syn::Ident,
    should_panic: bool,
    expected: Option<String>,
    ignore: bool,
    ignore_reason: Option<String>,
}

fn is(attr: &Attribute, name: &str) -> bool {
    attr.path().is_ident(name)
}

/// The string of `#[name = "…"]`, if the attribute has that form.
fn name_value_str(attr: &Attribute) -> syn::Result<Option<String>> {
    match &attr.meta {
        Meta::Path(_) => Ok(None),
        Meta::NameValue(nv) => match &nv.value {
            Expr::Lit(l) => match &l.lit {
                Lit::Str(s) => Ok(Some(s.value())),
                _ => Err(syn::Error::new(nv.value.span(), "expected a string")),
            },
            _ => Err(syn::Error::new(nv.value.span(), "expected a string")),
        },
        Meta::List(l) => Err(syn::Error::new(
            l.span(),
            "expected `#[ignore]` or `#[ignore = \"reason\"]`",
        )),
    }
}

/// `expected` of `#[should_panic(expected = "…")]`.
fn should_panic_expected(attr: &Attribute) -> syn::Result<Option<String>> {
    match &attr.meta {
        Meta::Path(_) => Ok(None),
        Meta::List(_) => {
            let mut expected = None;
            attr.parse_nested_meta(|m| {
                if m.path.is_ident("expected") {
                    let s: syn::LitStr = m.value()?.parse()?;
                    expected = Some(s.value());
                    Ok(())
                } else {
                    Err(m.error("expected `expected = \"…\"`"))
                }
            })?;
            Ok(expected)
        }
        Meta::NameValue(nv) => match &nv.value {
            // `#[should_panic = "…"]`, which libtest also takes.
            Expr::Lit(syn::ExprLit {
                lit: Lit::Str(s), ..
            }) => Ok(Some(s.value())),
            _ => Err(syn::Error::new(nv.span(), "expected a string")),
        },
    }
}

fn expand(args: TokenStream2, mut module: ItemMod) -> syn::Result<TokenStream2> {
    if !args.is_empty() {
        return Err(syn::Error::new(
            args.span(),
            "`#[xen_test::tests]` takes no arguments",
        ));
    }
    let Some((_, items)) = module.content.as_mut() else {
        return Err(syn::Error::new(
            module.span(),
            "`#[xen_test::tests]` needs an inline module: `mod tests { … }`",
        ));
    };
    let mut tests = Vec::new();
    for item in items.iter_mut() {
        let Item::Fn(f) = item else { continue };
        if !f.attrs.iter().any(|a| is(a, "test")) {
            for a in &f.attrs {
                if is(a, "should_panic") || is(a, "ignore") {
                    return Err(syn::Error::new(
                        a.span(),
                        "only a `#[test]` function takes this attribute",
                    ));
                }
            }
            continue;
        }
        let sig = &f.sig;
        if !sig.inputs.is_empty() {
            return Err(syn::Error::new(
                sig.inputs.span(),
                "a test takes no arguments",
            ));
        }
        if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
            return Err(syn::Error::new(
                sig.generics.span(),
                "a test has no generics",
            ));
        }
        if let Some(a) = &sig.asyncness {
            return Err(syn::Error::new(a.span(), "a test is not `async`"));
        }
        if let Some(u) = &sig.unsafety {
            return Err(syn::Error::new(u.span(), "a test is not `unsafe`"));
        }
        if let ReturnType::Type(_, ty) = &sig.output {
            let unit = matches!(&**ty, syn::Type::Tuple(t) if t.elems.is_empty());
            if !unit {
                return Err(syn::Error::new(
                    ty.span(),
                    "a test returns `()` (report a failure by panicking)",
                ));
            }
        }
        let mut t = Collected {
            ident: sig.ident.clone(),
            should_panic: false,
            expected: None,
            ignore: false,
            ignore_reason: None,
        };
        let mut kept = Vec::new();
        for a in f.attrs.drain(..) {
            if is(&a, "test") {
                if !matches!(a.meta, Meta::Path(_)) {
                    return Err(syn::Error::new(a.span(), "`#[test]` takes no arguments"));
                }
            } else if is(&a, "should_panic") {
                t.should_panic = true;
                t.expected = should_panic_expected(&a)?;
            } else if is(&a, "ignore") {
                t.ignore = true;
                t.ignore_reason = name_value_str(&a)?;
            } else {
                kept.push(a);
            }
        }
        f.attrs = kept;
        tests.push(t);
    }
    let n = tests.len();
    let entries = tests.iter().map(|t| {
        let ident = &t.ident;
        let name = ident.to_string();
        let should_panic = t.should_panic;
        let ignore = t.ignore;
        let expected = match &t.expected {
            Some(s) => quote!(::core::option::Option::Some(#s)),
            None => quote!(::core::option::Option::None),
        };
        let reason = match &t.ignore_reason {
            Some(s) => quote!(::core::option::Option::Some(#s)),
            None => quote!(::core::option::Option::None),
        };
        quote! {
            ::xen_test::Test {
                name: #name,
                func: #ident,
                should_panic: #should_panic,
                expected: #expected,
                ignore: #ignore,
                ignore_reason: #reason,
            }
        }
    });
    let table = syn::Ident::new("__XEN_TEST_TABLE", Span::call_site());
    let generated: Vec<Item> = vec![
        syn::parse_quote! {
            static #table: [::xen_test::Test; #n] = [#(#entries),*];
        },
        syn::parse_quote! {
            /// The unikernel's main function, called by its entry code: runs the tests.
            ///
            /// # Safety
            ///
            /// `device_tree` is the address of the device tree Xen handed the guest, as
            /// `xen_test::__private::start` requires: only the entry code calls this.
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn guest_main(device_tree: usize) -> ! {
                unsafe { ::xen_test::__private::start(device_tree, &#table) }
            }
        },
        syn::parse_quote! {
            #[panic_handler]
            fn __xen_test_panic(info: &::core::panic::PanicInfo<'_>) -> ! {
                ::xen_test::__private::panicked(info, &#table)
            }
        },
    ];
    items.extend(generated);
    Ok(quote!(#module))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_str(module: &str) -> Result<String, String> {
        let m: ItemMod = syn::parse_str(module).map_err(|e| e.to_string())?;
        expand(TokenStream2::new(), m)
            .map(|t| t.to_string())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn collects_and_strips_the_test_attributes() {
        let out = expand_str(
            "mod t { #[test] fn a() {} #[test] #[should_panic(expected = \"boom\")] fn b() {} \
             #[test] #[ignore = \"slow\"] fn c() {} fn helper() {} }",
        )
        .unwrap();
        assert!(out.contains("[:: xen_test :: Test ; 3usize]"), "{out}");
        assert!(
            !out.contains("# [test]")
                && !out.contains("should_panic (")
                && !out.contains("# [ignore")
        );
        assert!(
            out.contains("name : \"b\"")
                && out.contains("Some (\"boom\")")
                && out.contains("Some (\"slow\")")
        );
        assert!(out.contains("fn helper"));
        assert!(
            out.contains("unsafe extern \"C\" fn guest_main") && out.contains("# [panic_handler]")
        );
    }

    #[test]
    fn refuses_what_cannot_be_a_test() {
        for (module, says) in [
            ("mod t { #[test] fn a(x: u32) {} }", "takes no arguments"),
            ("mod t { #[test] fn a() -> u32 { 0 } }", "returns `()`"),
            ("mod t { #[test] async fn a() {} }", "not `async`"),
            ("mod t { #[test] fn a<T>() {} }", "no generics"),
            (
                "mod t { #[should_panic] fn a() {} }",
                "only a `#[test]` function",
            ),
            ("mod t;", "inline module"),
        ] {
            let e = expand_str(module).unwrap_err();
            assert!(e.contains(says), "{module}: {e}");
        }
    }
}
