//! `recall-distill <model dir> <out dir> [options]`: builds a static
//! embedding table from a sentence-transformers model directory, plainly
//! distilled or fitted to the transformer on a corpus (`--corpus`, see
//! `scripts/wordnet-corpus.sh`). `--help` lists the options.

use std::path::PathBuf;
use std::process::ExitCode;

use recall_embed::distill::{Corpus, DistillOptions, Weighting, distill};
use recall_embed::tokenlearn::FitOptions;

const USAGE: &str = "usage: recall-distill <model dir> <out dir> [options]

  --dims N               dimensions kept by PCA (256)
  --id ID                model id written into the table
  --words FILE           whole words to add as rows, one a line, most frequent first
  --weighting W          row weights from token rank: zipf (default), sif or uniform
  --corpus FILE          fit the rows to the transformer on these texts, one a line, or
                         a tab-separated group a line (tokenlearn; held out by group;
                         scripts/wordnet-corpus.sh writes one)
  --targets-cache FILE   keep the transformer's embeddings of the corpus here between runs
  --epochs N             passes over the corpus (3)
  --learning-rate X      Adam's step size (0.001)
  --regularization X     pull of each fitted row back toward its distilled start (0)
  --learn-weights        fit each row's weight too, not only its vector";

fn parse<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{name}: not a valid value: {value}"))
}

fn lines(name: &str, path: &str) -> Result<Vec<String>, String> {
    std::fs::read_to_string(path)
        .map(|text| {
            text.lines()
                .map(str::trim)
                .filter(|w| !w.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .map_err(|e| format!("{name}: {path}: {e}"))
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut positional = Vec::new();
    let mut options = DistillOptions {
        model_id: "all-minilm-l6-v2/static".into(),
        dims: 256,
        words: Vec::new(),
        batch: 256,
        weighting: Weighting::Zipf,
        corpus: None,
    };
    let mut corpus: Option<Vec<Vec<String>>> = None;
    let mut cache = None;
    let mut fit = FitOptions::default();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        let result: Result<(), String> = match arg.as_str() {
            "--dims" => value("--dims").and_then(|v| parse(&arg, &v).map(|d| options.dims = d)),
            "--id" => value("--id").map(|v| options.model_id = v),
            "--words" => value("--words").and_then(|path| {
                lines(&arg, &path).map(|words| {
                    options.words = words.into_iter().filter(|w| !w.starts_with('#')).collect();
                })
            }),
            "--weighting" => {
                value("--weighting").and_then(|v| v.parse().map(|w| options.weighting = w))
            }
            "--corpus" => value("--corpus").and_then(|path| {
                lines(&arg, &path).map(|lines| {
                    corpus = Some(
                        lines
                            .iter()
                            .map(|l| {
                                l.split('\t')
                                    .map(str::trim)
                                    .filter(|t| !t.is_empty())
                                    .map(str::to_owned)
                                    .collect()
                            })
                            .collect(),
                    );
                })
            }),
            "--targets-cache" => value("--targets-cache").map(|v| cache = Some(PathBuf::from(v))),
            "--epochs" => value("--epochs").and_then(|v| parse(&arg, &v).map(|n| fit.epochs = n)),
            "--learning-rate" => value("--learning-rate")
                .and_then(|v| parse(&arg, &v).map(|x| fit.learning_rate = x)),
            "--regularization" => value("--regularization")
                .and_then(|v| parse(&arg, &v).map(|x| fit.regularization = x)),
            "--learn-weights" => {
                fit.learn_weights = true;
                Ok(())
            }
            "--help" | "-h" => {
                eprintln!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other if other.starts_with("--") => Err(format!("unknown option {other}")),
            other => {
                positional.push(PathBuf::from(other));
                Ok(())
            }
        };
        if let Err(e) = result {
            eprintln!("recall-distill: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    let [model_dir, out_dir] = positional.as_slice() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    options.corpus = corpus.map(|groups| Corpus { groups, cache, fit });
    let started = std::time::Instant::now();
    match distill(model_dir, out_dir, &options) {
        Ok(report) => {
            if let Some(fit) = &report.fit {
                eprintln!(
                    "recall-distill: fitted on {} texts ({} rows touched); held-out cosine to the transformer {:.4} → {:.4} ({:.4} after PCA)",
                    fit.texts,
                    fit.rows_touched,
                    fit.cosine_before,
                    fit.cosine_after
                        .last()
                        .copied()
                        .unwrap_or(fit.cosine_before),
                    fit.cosine_projected
                );
            }
            eprintln!(
                "recall-distill: wrote {} ({} token rows, {} word rows, {} dimensions, {:.1} % of the variance kept, {} bytes) in {:.0?}",
                out_dir.display(),
                report.tokens,
                report.words,
                report.dims,
                report.variance_kept * 100.0,
                report.bytes,
                started.elapsed()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("recall-distill: {e}");
            ExitCode::FAILURE
        }
    }
}
