//! `promoscope`: train and evaluate the HSAYN promoter-expression model.

mod commands;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::commands::{bench, design, evaluate, export, ism, predict, simulate, train, tune};

#[derive(Parser)]
#[command(
    version,
    about = "Yeast promoter expression with the DREAM 2022 HSAYN model"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands; each one's help is its module's `Args`.
#[derive(Subcommand)]
enum Command {
    Train(train::Args),
    Evaluate(evaluate::Args),
    Predict(predict::Args),
    Ism(ism::Args),
    Design(design::Args),
    Export(export::Args),
    Tune(tune::Args),
    Bench(bench::Args),
    Simulate(simulate::Args),
}

fn run() -> Result<ExitCode> {
    match Cli::parse().command {
        Command::Train(args) => return train::run(args),
        Command::Bench(args) => bench::run(args)?,
        Command::Evaluate(args) => evaluate::run(args)?,
        Command::Predict(args) => predict::run(args)?,
        Command::Ism(args) => ism::run(args)?,
        Command::Design(args) => design::run(args)?,
        Command::Export(args) => export::run(args)?,
        Command::Tune(args) => tune::run(args)?,
        Command::Simulate(args) => simulate::run(args)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    promoscope::keep_freed_memory();
    match run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
