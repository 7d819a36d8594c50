//! SIGTERM sent the moment the ready line appears (as `gregor dev` and scripts do)
//! stops the broker cleanly: its handlers are installed before it announces itself.

use anyhow::{anyhow, ensure, Result};
use gregor_integration_tests::BrokerProcess;

/// Several brokers start and stop at once so that the scheduler, not luck, decides
/// whether a SIGTERM lands between the ready line and a late handler.
#[test]
fn sigterm_right_after_the_ready_line_stops_cleanly() -> Result<()> {
    let temp = tempfile::tempdir()?;
    let workers: Vec<_> = (0..4)
        .map(|worker| {
            let dir = temp.path().join(format!("data-{worker}")).display().to_string();
            std::thread::spawn(move || -> Result<()> {
                for round in 0..12 {
                    // `stop` sends SIGTERM at once and expects exit status 0.
                    let mut broker = BrokerProcess::start(&[("log.dirs", dir.as_str())])?;
                    let status = broker.stop()?;
                    ensure!(status.success(), "worker {worker}, round {round}: {status}");
                }
                Ok(())
            })
        })
        .collect();
    for worker in workers {
        worker.join().map_err(|_| anyhow!("a worker panicked"))??;
    }
    Ok(())
}
