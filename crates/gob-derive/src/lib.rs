//! `#[derive(GobType)]` for `skywire-gob`: generates the Go type description (name, fields in
//! declaration order with their Go names) and the zero-omitting struct encoder.
//!
//! Field names follow serde's `rename` / `rename_all = "PascalCase"` attributes (so encoding and
//! serde decoding agree) unless `#[gob(rename = "...")]` overrides them. See the `skywire-gob`
//! crate docs for all attributes.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::quote;
use syn::{Data, DeriveInput, Fields, LitStr, parse_macro_input, spanned::Spanned};

/// Derives `skywire_gob::GobType` for a struct with named fields, a unit struct or a newtype.
#[proc_macro_derive(GobType, attributes(gob))]
pub fn derive_gob_type(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(&input) {
        Ok(ts) => ts.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

#[derive(Default)]
struct ContainerAttrs {
    name: Option<String>,
    package: Option<String>,
    transparent: bool,
    rename_all: Option<String>,
}

#[derive(Default)]
struct FieldAttrs {
    rename: Option<String>,
    gob_rename: Option<String>,
    skip: bool,
}

/// Consumes the value of an attribute item we do not care about.
fn skip_meta(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        let _: syn::Expr = meta.value()?.parse()?;
    } else if meta.input.peek(syn::token::Paren) {
        let content;
        syn::parenthesized!(content in meta.input);
        let _: TokenStream2 = content.parse()?;
    }
    Ok(())
}

fn container_attrs(input: &DeriveInput) -> syn::Result<ContainerAttrs> {
    let mut a = ContainerAttrs::default();
    for attr in &input.attrs {
        if attr.path().is_ident("gob") {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("name") {
                    a.name = Some(meta.value()?.parse::<LitStr>()?.value());
                } else if meta.path.is_ident("package") {
                    a.package = Some(meta.value()?.parse::<LitStr>()?.value());
                } else if meta.path.is_ident("transparent") {
                    a.transparent = true;
                } else {
                    return Err(meta.error("unknown gob attribute"));
                }
                Ok(())
            })?;
        } else if attr.path().is_ident("serde") {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("rename_all") && meta.input.peek(syn::Token![=]) {
                    a.rename_all = Some(meta.value()?.parse::<LitStr>()?.value());
                    Ok(())
                } else {
                    skip_meta(&meta)
                }
            })?;
        }
    }
    Ok(a)
}

fn field_attrs(field: &syn::Field) -> syn::Result<FieldAttrs> {
    let mut a = FieldAttrs::default();
    for attr in &field.attrs {
        if attr.path().is_ident("gob") {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("rename") {
                    a.gob_rename = Some(meta.value()?.parse::<LitStr>()?.value());
                } else if meta.path.is_ident("skip") {
                    a.skip = true;
                } else {
                    return Err(meta.error("unknown gob field attribute"));
                }
                Ok(())
            })?;
        } else if attr.path().is_ident("serde") {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("rename") && meta.input.peek(syn::Token![=]) {
                    a.rename = Some(meta.value()?.parse::<LitStr>()?.value());
                    Ok(())
                } else if meta.path.is_ident("skip") || meta.path.is_ident("skip_deserializing") {
                    a.skip = true;
                    Ok(())
                } else {
                    skip_meta(&meta)
                }
            })?;
        }
    }
    Ok(a)
}

fn apply_rename_all(rule: &str, ident: &str, span: proc_macro2::Span) -> syn::Result<String> {
    let ident = ident.strip_prefix("r#").unwrap_or(ident);
    Ok(match rule {
        "PascalCase" => ident
            .split('_')
            .map(|w| {
                let mut c = w.chars();
                match c.next() {
                    Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                    None => String::new(),
                }
            })
            .collect(),
        "camelCase" => {
            let p = apply_rename_all("PascalCase", ident, span)?;
            let mut c = p.chars();
            match c.next() {
                Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
                None => String::new(),
            }
        }
        "lowercase" => ident.to_lowercase(),
        "UPPERCASE" => ident.to_uppercase(),
        "snake_case" => ident.to_owned(),
        other => {
            return Err(syn::Error::new(
                span,
                format!("GobType: unsupported serde rename_all rule {other:?}"),
            ));
        }
    })
}

fn expand(input: &DeriveInput) -> syn::Result<TokenStream2> {
    let attrs = container_attrs(input)?;
    let ident = &input.ident;
    let go_name = attrs.name.clone().unwrap_or_else(|| ident.to_string());
    let type_string = match &attrs.package {
        Some(p) if !go_name.is_empty() => format!("{p}.{go_name}"),
        _ => go_name.clone(),
    };
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new(
            input.span(),
            "GobType can only be derived for structs",
        ));
    };

    let mut generics = input.generics.clone();
    {
        let wc = generics.make_where_clause();
        for f in data.fields.iter() {
            let ty = &f.ty;
            wc.predicates
                .push(syn::parse_quote!(#ty: ::skywire_gob::GobType));
        }
    }
    let (impl_g, ty_g, where_c) = generics.split_for_impl();

    let body = match &data.fields {
        Fields::Unnamed(f) if f.unnamed.len() == 1 => {
            let inner = &f.unnamed[0].ty;
            let register = if attrs.transparent {
                quote! { <#inner as ::skywire_gob::GobType>::gob_register(reg, ctx) }
            } else {
                quote! {
                    <#inner as ::skywire_gob::GobType>::gob_register(reg, ::skywire_gob::Ctx {
                        field: ctx.field,
                        named: ::core::option::Option::Some(ctx.named_or(
                            ::skywire_gob::__private::TypeId::of::<Self>(), #go_name)),
                    })
                }
            };
            let ts = if attrs.transparent {
                quote! { <#inner as ::skywire_gob::GobType>::gob_type_string() }
            } else {
                quote! { ::std::string::String::from(#type_string) }
            };
            quote! {
                fn gob_register(reg: &mut ::skywire_gob::Registry, ctx: ::skywire_gob::Ctx)
                    -> ::skywire_gob::GobId { #register }
                fn gob_type_string() -> ::std::string::String { #ts }
                fn gob_is_zero(&self) -> bool {
                    ::skywire_gob::GobType::gob_is_zero(&self.0)
                }
                fn gob_encode(&self, out: &mut ::std::vec::Vec<u8>) -> ::skywire_gob::Result<()> {
                    ::skywire_gob::GobType::gob_encode(&self.0, out)
                }
            }
        }
        Fields::Unnamed(_) => {
            return Err(syn::Error::new(
                input.span(),
                "GobType: tuple structs must have exactly one field (a Go named type)",
            ));
        }
        Fields::Named(_) | Fields::Unit => {
            if attrs.transparent {
                return Err(syn::Error::new(
                    input.span(),
                    "GobType: transparent needs a newtype",
                ));
            }
            let mut defs = Vec::new();
            let mut encs = Vec::new();
            let mut index: i64 = 0;
            for f in data.fields.iter() {
                let fa = field_attrs(f)?;
                if fa.skip {
                    continue;
                }
                let Some(fid) = f.ident.as_ref() else {
                    continue;
                };
                let name = match (&fa.gob_rename, &fa.rename, &attrs.rename_all) {
                    (Some(n), _, _) | (None, Some(n), _) => n.clone(),
                    (None, None, Some(rule)) => apply_rename_all(rule, &fid.to_string(), f.span())?,
                    (None, None, None) => fid.to_string().trim_start_matches("r#").to_owned(),
                };
                let ty = &f.ty;
                defs.push(quote! {
                    ::skywire_gob::FieldDef::new(#name,
                        <#ty as ::skywire_gob::GobType>::gob_register(reg, ::skywire_gob::Ctx::FIELD))
                });
                encs.push(quote! { enc.field(#index, &self.#fid)?; });
                index += 1;
            }
            quote! {
                fn gob_register(reg: &mut ::skywire_gob::Registry, ctx: ::skywire_gob::Ctx)
                    -> ::skywire_gob::GobId {
                    let (key, name) = ctx.named_or(::skywire_gob::__private::TypeId::of::<Self>(), #go_name);
                    reg.register_struct(key, name, |reg| ::std::vec![#(#defs),*])
                }
                fn gob_type_string() -> ::std::string::String {
                    ::std::string::String::from(#type_string)
                }
                fn gob_is_zero(&self) -> bool { false }
                fn gob_encode(&self, out: &mut ::std::vec::Vec<u8>) -> ::skywire_gob::Result<()> {
                    let mut enc = ::skywire_gob::StructEncoder::new(out);
                    #(#encs)*
                    enc.finish();
                    ::core::result::Result::Ok(())
                }
            }
        }
    };

    Ok(quote! {
        impl #impl_g ::skywire_gob::GobType for #ident #ty_g #where_c {
            #body
        }
    })
}
