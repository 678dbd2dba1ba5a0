//! Prints what `bobbin devices` will print: `cargo run -p bobbin-drivers --example list_devices`
//! (add `-- --json` for the serialised form).

fn main() {
    let list = bobbin_drivers::list_devices();
    if std::env::args().any(|a| a == "--json") {
        match serde_json::to_string_pretty(&list) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("cannot serialise: {e}"),
        }
    } else {
        print!("{list}");
    }
}
