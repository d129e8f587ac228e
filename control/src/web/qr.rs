//! The TOTP QR code, rendered on the server as inline SVG markup: no script, no image
//! request, nothing that leaves the page (the code holds the new seed). SVG elements
//! with presentation attributes are neither script nor style, so the strict CSP holds.

use crate::error::{Error, Result};
use dbcrate_core::secret::SecretString;
use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};
use zeroize::Zeroizing;

/// The QR code of `text` as an `<svg>` element (no XML declaration), dark modules on
/// white whatever the colour scheme, so every camera reads it.
pub fn svg(text: &SecretString) -> Result<Zeroizing<String>> {
    let code = QrCode::with_error_correction_level(text.expose_secret().as_bytes(), EcLevel::M)
        .map_err(|e| Error::internal(format!("the QR code could not be made: {e}")))?;
    let rendered = Zeroizing::new(
        code.render::<svg::Color<'_>>()
            .min_dimensions(220, 220)
            .quiet_zone(true)
            .dark_color(svg::Color("#000000"))
            .light_color(svg::Color("#ffffff"))
            .build(),
    );
    let start = rendered
        .find("<svg")
        .ok_or_else(|| Error::internal("the QR renderer made no <svg> element"))?;
    Ok(Zeroizing::new(rendered[start..].to_string()))
}

#[cfg(test)]
mod tests {
    use super::svg;
    use dbcrate_core::secret::SecretString;

    #[test]
    fn the_code_is_an_svg_element_without_script_or_style() {
        let uri = SecretString::new(
            "otpauth://totp/dbcrate:a%40b.example?secret=JBSWY3DPEHPK3PXP&issuer=dbcrate".into(),
        );
        let markup = svg(&uri).unwrap();
        assert!(markup.starts_with("<svg"), "{}", &markup[..40]);
        assert!(markup.trim_end().ends_with("</svg>"));
        for forbidden in ["<script", "style=", "<style", "<?xml", "href"] {
            assert!(!markup.contains(forbidden), "{forbidden} in the QR markup");
        }
    }
}
