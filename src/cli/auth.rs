//! `casebridge auth`: the credentials key, and the browser sign-in.

use std::process::ExitCode;

use casebridge::store;

use super::args::AuthCommand;
use super::load_config;

pub(crate) async fn run_auth(what: AuthCommand) -> ExitCode {
    let (config_path, callback) = match what {
        AuthCommand::Keygen => {
            out!("{}", casebridge::auth::vault::Vault::generate_key());
            return ExitCode::SUCCESS;
        }
        AuthCommand::Login { config, callback } => (config, callback),
    };
    let (config, base) = match load_config(&config_path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let casebridge::config::AuthConfig::Stored { client_id, client_secret: Some(secret) } = &config.org.auth else {
        eprintln!("error: org.auth must be `grant: stored` with the app's client_id and client_secret for auth login");
        return ExitCode::from(2);
    };
    let secret = match secret.read("org.auth.client_secret", &base) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let vault = match config.credentials_key.as_ref().map(|k| k.read("credentials_key", &base)) {
        Some(Ok(key)) => match casebridge::auth::vault::Vault::from_key(&key) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("error: credentials_key: {e}");
                return ExitCode::from(2);
            }
        },
        Some(Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
        None => {
            eprintln!(
                "error: credentials_key is not set\nhint: `casebridge auth keygen` makes a key; name its file or variable in the config"
            );
            return ExitCode::from(2);
        }
    };
    let store = match store::Store::open(&base.join(&config.store_path)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let request = casebridge::auth::login::LoginRequest {
        login_url: config.org.login_url.clone(),
        client_id: client_id.clone(),
        client_secret: secret,
        callback,
        scopes: casebridge::salesforce::auth::SCOPES.to_string(),
    };
    let (address, finish) = match casebridge::auth::login::start(request.clone()).await {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    out!("Open this address in a browser and allow casebridge:");
    out!("{address}");
    match finish.await {
        Ok((refresh, user)) => match casebridge::auth::login::save(&store, &vault, &request, &refresh, user.clone()) {
            Ok(()) => {
                out!(
                    "Signed in as {}; the credentials are stored, sealed, in {}.",
                    user.unwrap_or_default(),
                    config.store_path.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        },
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
