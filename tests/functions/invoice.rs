//! invoice_total: exact decimal totals per line and per tax rate, rounding
//! modes, currencies with 0 and 3 decimals, and errors that name the field.

use serde_json::{Value, json};

use crate::{function_error, ok};

pub(crate) const INVOICE: &str = "invoice_total";

#[test]
fn invoice_with_two_tax_rates() {
    // Decimal strings and JSON numbers (19.99 read from its text, not f64).
    let out = ok(
        INVOICE,
        r#"{"currency":"EUR","items":[
            {"description":"Consulting hours","quantity":"12.5","unit_price":"120.00","tax_percent":"19"},
            {"description":"Book","quantity":3,"unit_price":19.99,"tax_percent":"7"},
            {"description":"Cable","quantity":"2","unit_price":"4.175","tax_percent":19.0}]}"#,
    );
    assert_eq!(
        out,
        json!({
            "currency": "EUR",
            "minor_units": 2,
            "lines": [
                {"description":"Consulting hours","net":"1500.00","tax_percent":"19","tax":"285.00","total":"1785.00"},
                {"description":"Book","net":"59.97","tax_percent":"7","tax":"4.20","total":"64.17"},
                {"description":"Cable","net":"8.35","tax_percent":"19","tax":"1.59","total":"9.94"}
            ],
            "subtotal": "1568.32",
            "tax_total": "290.79",
            "total": "1859.11",
            "tax_by_rate": [
                {"tax_percent":"7","net":"59.97","tax":"4.20"},
                {"tax_percent":"19","net":"1508.35","tax":"286.59"}
            ],
            "rounding": "half_up per line to 2 decimals"
        })
    );
}

#[test]
fn invoice_reads_json_numbers_exactly() {
    // As f64, 1.005 is 1.00499999999999989... and 2.675 is 2.67499999...:
    // rounding those would give 1.00 and 2.67.
    let out = ok(
        INVOICE,
        r#"{"currency":"USD","items":[{"quantity":1,"unit_price":1.005,"tax_percent":0},{"quantity":1,"unit_price":2.675,"tax_percent":10}]}"#,
    );
    assert_eq!(
        out,
        json!({
            "currency": "USD",
            "minor_units": 2,
            "lines": [
                {"description":"","net":"1.01","tax_percent":"0","tax":"0.00","total":"1.01"},
                {"description":"","net":"2.68","tax_percent":"10","tax":"0.27","total":"2.95"}
            ],
            "subtotal": "3.69",
            "tax_total": "0.27",
            "total": "3.96",
            "tax_by_rate": [
                {"tax_percent":"0","net":"1.01","tax":"0.00"},
                {"tax_percent":"10","net":"2.68","tax":"0.27"}
            ],
            "rounding": "half_up per line to 2 decimals"
        })
    );
}

#[test]
fn invoice_rounding_modes() {
    let items = r#"[{"quantity":"1","unit_price":"2.345","tax_percent":"0"},{"quantity":"1","unit_price":"2.355","tax_percent":"0"},{"description":"Return","quantity":"-1","unit_price":"2.345","tax_percent":"0"}]"#;
    let even = ok(
        INVOICE,
        &format!(r#"{{"currency":"EUR","rounding":"half_even","items":{items}}}"#),
    );
    let nets: Vec<&Value> = even["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| &l["net"])
        .collect();
    assert_eq!(nets, ["2.34", "2.36", "-2.34"]);
    assert_eq!(even["rounding"], "half_even per line to 2 decimals");
    let up = ok(INVOICE, &format!(r#"{{"currency":"EUR","items":{items}}}"#));
    let nets: Vec<&Value> = up["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| &l["net"])
        .collect();
    assert_eq!(nets, ["2.35", "2.36", "-2.35"]);
    assert_eq!(
        (&up["subtotal"], &up["total"]),
        (&json!("2.36"), &json!("2.36"))
    );
}

#[test]
fn invoice_in_zero_and_three_decimal_currencies() {
    let jpy = ok(
        INVOICE,
        r#"{"currency":"JPY","items":[{"description":"Ramen","quantity":3,"unit_price":980,"tax_percent":10},{"description":"Tea","quantity":1,"unit_price":150,"tax_percent":8}]}"#,
    );
    assert_eq!(
        jpy,
        json!({
            "currency":"JPY","minor_units":0,
            "lines":[
                {"description":"Ramen","net":"2940","tax_percent":"10","tax":"294","total":"3234"},
                {"description":"Tea","net":"150","tax_percent":"8","tax":"12","total":"162"}
            ],
            "subtotal":"3090","tax_total":"306","total":"3396",
            "tax_by_rate":[{"tax_percent":"8","net":"150","tax":"12"},{"tax_percent":"10","net":"2940","tax":"294"}],
            "rounding":"half_up per line to 0 decimals"
        })
    );
    let kwd = ok(
        INVOICE,
        r#"{"currency":"KWD","items":[{"description":"Service","quantity":"1.5","unit_price":"10.125","tax_percent":"5"}]}"#,
    );
    assert_eq!(
        kwd,
        json!({
            "currency":"KWD","minor_units":3,
            "lines":[{"description":"Service","net":"15.188","tax_percent":"5","tax":"0.759","total":"15.947"}],
            "subtotal":"15.188","tax_total":"0.759","total":"15.947",
            "tax_by_rate":[{"tax_percent":"5","net":"15.188","tax":"0.759"}],
            "rounding":"half_up per line to 3 decimals"
        })
    );
}

#[test]
fn invoice_rejects_bad_input_naming_the_field() {
    let cases = [
        (
            r#"{"currency":"EURO","items":[{"quantity":1,"unit_price":"1","tax_percent":0}]}"#,
            r#"invalid input at .currency: "EURO" is not an ISO 4217 currency code"#,
        ),
        (
            r#"{"currency":"EUR","items":[]}"#,
            "invalid input at .items: an invoice needs at least one line item",
        ),
        (
            r#"{"currency":"EUR","items":[{"quantity":1,"unit_price":"1","tax_percent":0},{"quantity":1,"unit_price":"1","tax_percent":"150"}]}"#,
            "invalid input at .items[1].tax_percent: 150 is not between 0 and 100",
        ),
        (
            r#"{"currency":"EUR","items":[{"quantity":1,"unit_price":"12,50","tax_percent":0}]}"#,
            r#"invalid input at .items[0].unit_price: "12,50" is not a decimal number"#,
        ),
        (
            r#"{"currency":"EUR","items":[{"quantity":true,"unit_price":"1","tax_percent":0}]}"#,
            r#"invalid input at .items[0].quantity: expected a decimal string like "19.99" or a number, got true"#,
        ),
        (
            r#"{"currency":"EUR","items":[{"quantity":1,"unit_price":"0.0000000000000000001","tax_percent":0}]}"#,
            r#"invalid input at .items[0].unit_price: "0.0000000000000000001" has more than 18 digits after the decimal point"#,
        ),
        (
            r#"{"currency":"EUR","items":[{"quantity":1,"tax_percent":0}]}"#,
            "invalid input at .items[0]: missing field `unit_price`",
        ),
        (
            r#"{"currency":"EUR","rounding":"up","items":[{"quantity":1,"unit_price":"1","tax_percent":0}]}"#,
            "invalid input at .rounding: unknown variant `up`, expected `half_up` or `half_even`",
        ),
        (
            r#"{"currency":"EUR","items":[{"quantity":"999999999999999999999999","unit_price":"999999999999999999999999","tax_percent":0}]}"#,
            "invalid input at .items[0]: amount too large",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(function_error(INVOICE, input), want, "{input}");
    }
}
