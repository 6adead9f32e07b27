use super::{watch::*, *};
use tokio::time::Instant;

#[test]
fn an_address_gets_at_most_its_cap_and_the_place_comes_back_when_a_connection_closes() {
    let counts = Arc::new(AddressCounts::default());
    let addr: IpAddr = "192.0.2.7".parse().unwrap();
    let first = counts.try_take(addr, 2).unwrap();
    let _second = counts.try_take(addr, 2).unwrap();
    assert!(counts.try_take(addr, 2).is_none());
    assert!(counts.try_take("192.0.2.8".parse().unwrap(), 2).is_some());
    drop(first);
    assert!(counts.try_take(addr, 2).is_some());
}

#[test]
fn ipv6_clients_are_counted_by_their_64() {
    let counts = Arc::new(AddressCounts::default());
    let _one = counts.try_take("2001:db8:1:2::1".parse().unwrap(), 1).unwrap();
    assert!(
        counts
            .try_take("2001:db8:1:2:ffff::9".parse().unwrap(), 1)
            .is_none(),
        "another address of the same /64 is the same client"
    );
    assert!(counts.try_take("2001:db8:1:3::1".parse().unwrap(), 1).is_some());
}

const TIMEOUTS: Timeouts = Timeouts {
    header_read: Duration::from_secs(10),
    keep_alive: Duration::from_secs(5),
    send: Duration::from_secs(30),
};

#[tokio::test(start_paused = true)]
async fn a_silent_connection_expires_after_the_header_timeout() {
    let tracker = Tracker::new(TIMEOUTS);
    let started = Instant::now();
    tracker.expired().await;
    assert_eq!(started.elapsed(), Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn bytes_of_a_first_request_do_not_extend_its_header_deadline() {
    let tracker = Arc::new(Tracker::new(TIMEOUTS));
    let started = Instant::now();
    let feeder = tokio::spawn({
        let tracker = tracker.clone();
        async move {
            for _ in 0..30 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                tracker.bytes_arrived();
            }
        }
    });
    tracker.expired().await;
    assert_eq!(started.elapsed(), Duration::from_secs(10));
    feeder.abort();
}

#[tokio::test(start_paused = true)]
async fn a_request_in_flight_holds_the_connection_and_keep_alive_counts_from_its_end() {
    let tracker = Arc::new(Tracker::new(TIMEOUTS));
    let started = Instant::now();
    let request = InFlight::start(tracker.clone());
    let ended = tokio::spawn({
        async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            drop(request);
        }
    });
    tracker.expired().await;
    assert_eq!(started.elapsed(), Duration::from_secs(65));
    ended.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_next_request_on_a_kept_alive_connection_gets_the_header_timeout_from_its_first_byte() {
    let tracker = Arc::new(Tracker::new(TIMEOUTS));
    drop(InFlight::start(tracker.clone()));
    let started = Instant::now();
    let feeder = tokio::spawn({
        let tracker = tracker.clone();
        async move {
            tokio::time::sleep(Duration::from_secs(4)).await;
            tracker.bytes_arrived();
        }
    });
    tracker.expired().await;
    assert_eq!(started.elapsed(), Duration::from_secs(14));
    feeder.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn keep_alive_counts_from_the_last_byte_written_not_from_the_handover() {
    let tracker = Arc::new(Tracker::new(TIMEOUTS));
    let started = Instant::now();
    // The response is handed over at once; hyper then drains its buffer for 20 s, a write a second.
    drop(InFlight::start(tracker.clone()));
    let writer = tokio::spawn({
        let tracker = tracker.clone();
        async move {
            for _ in 0..20 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                tracker.bytes_written();
            }
        }
    });
    tracker.expired().await;
    assert_eq!(started.elapsed(), Duration::from_secs(25));
    writer.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_client_that_stops_reading_is_closed_after_the_send_timeout_even_mid_request() {
    let tracker = Arc::new(Tracker::new(TIMEOUTS));
    let _request = InFlight::start(tracker.clone());
    tokio::time::sleep(Duration::from_secs(100)).await;
    tracker.bytes_written();
    let blocked = Instant::now();
    tracker.write_blocked();
    // Further blocked polls do not move the deadline.
    tokio::time::sleep(Duration::from_secs(10)).await;
    tracker.write_blocked();
    tracker.expired().await;
    assert_eq!(blocked.elapsed(), Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn a_write_that_goes_through_ends_the_stall() {
    let tracker = Arc::new(Tracker::new(TIMEOUTS));
    let _request = InFlight::start(tracker.clone());
    tracker.write_blocked();
    tokio::time::sleep(Duration::from_secs(29)).await;
    tracker.bytes_written();
    let watchdog = tokio::spawn({
        let tracker = tracker.clone();
        async move { tracker.expired().await }
    });
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert!(!watchdog.is_finished(), "in flight and writing: no deadline");
    watchdog.abort();
}

#[tokio::test(start_paused = true)]
async fn a_response_hyper_never_comes_back_for_stalls_unless_bytes_are_written() {
    let tracker = Arc::new(Tracker::new(TIMEOUTS));
    let _request = InFlight::start(tracker.clone());
    let body = tracker.body_started();
    // A frame handed over; hyper then writes for 20 s (a large frame to a slow reader) …
    let handed = Instant::now();
    tracker.body_waiting(body, Some(handed), None);
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        tracker.bytes_written();
    }
    // … and then nothing (HTTP/2 with no window): closed the send timeout after the last write.
    let last = Instant::now();
    tracker.expired().await;
    assert_eq!(last.elapsed(), Duration::from_secs(30));
    // Once hyper comes back, the body no longer waits.
    tracker.body_waiting(body, None, Some(handed));
    assert!(tracker.state().bodies_waiting.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_stalled_write_does_not_outlive_a_sooner_idle_deadline() {
    let tracker = Tracker::new(TIMEOUTS);
    let started = Instant::now();
    // No request yet (an HTTP/2 preface and pings, say), and its writes block.
    tracker.write_blocked();
    tracker.expired().await;
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(10),
        "the header timeout, not the send timeout"
    );
}
