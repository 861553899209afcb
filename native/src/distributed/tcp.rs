//! Multi-process collectives over plain TCP, for data-parallel training on any backend.
//!
//! burn 0.22.1 only ships collectives for CUDA/NCCL inside a single process, so Hearth brings its own transport:
//! gradients are copied to the host as flat `f32` vectors and summed across processes (possibly on several machines).
//!
//! Topology: every rank keeps two kinds of links.
//! - A star around rank 0 (the "master"), used for the rendezvous, `gather_bytes`, `broadcast_bytes`, `barrier` and
//!   the length check that precedes every all-reduce.
//! - A ring (rank r sends to r+1 and receives from r-1), used by the bandwidth-optimal ring all-reduce: a
//!   reduce-scatter followed by an all-gather, each moving (W-1)/W of the vector, so 2(W-1)/W·N floats per rank;
//!   and by `all_gather` alone (ZeRO's parameter gather).
//!
//! Every element is summed in a fixed ring order and then copied, so results are deterministic from run to run and
//! bit-identical on all ranks. On a broken link the collective shuts all its sockets down so that neighbours blocked
//! on it see an error too, instead of hanging.
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use hearth_core::Error;
use hearth_core::error::io;
use hearth_core::parallel::Collective;

/// "HEARTH" + protocol version 1; bump the version when the wire format changes.
const MAGIC: u64 = 0x4845_4152_5448_0001;

pub struct TcpCollective {
    rank: usize,
    world: usize,
    /// Rank 0: links to ranks 1..world (index r - 1). Other ranks: one link to rank 0. Empty when world == 1.
    star: Vec<TcpStream>,
    /// (to rank + 1, from rank - 1), both modulo world; None when world == 1.
    ring: Option<(TcpStream, TcpStream)>,
    send_buf: Vec<u8>,
    recv_buf: Vec<u8>,
    /// The collective timeout, if any (for the error message).
    wait: Option<Duration>,
}

impl std::fmt::Debug for TcpCollective {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpCollective").field("rank", &self.rank).field("world", &self.world).finish_non_exhaustive()
    }
}

impl TcpCollective {
    /// Rendezvous. Rank 0 binds `master` ("host:port") and accepts world-1 peers; other ranks connect to it, retrying
    /// until `timeout`. Each peer sends (magic, rank, world, ring port); rank 0 rejects duplicate ranks, out-of-range
    /// ranks and world-size mismatches, then tells every rank the ring address of its successor.
    pub fn connect(master: &str, rank: usize, world: usize, timeout: Duration) -> Result<Self, Error> {
        if world == 0 || rank >= world {
            return Err(dist(format!("invalid rank {rank} for world size {world}: RANK must be in 0..WORLD_SIZE")));
        }
        let mut c = TcpCollective {
            rank,
            world,
            star: Vec::new(),
            ring: None,
            send_buf: Vec::new(),
            recv_buf: Vec::new(),
            wait: None,
        };
        if world == 1 {
            return Ok(c);
        }
        let deadline = Instant::now() + timeout;
        let (ring_listener, next_addr) =
            if rank == 0 { c.serve_rendezvous(master, deadline)? } else { c.join_rendezvous(master, deadline)? };
        let (prev, next) = ((rank + world - 1) % world, (rank + 1) % world);
        let setup_err = |what: &str, e: io::Error| {
            dist(format!(
                "rank {rank} could not {what} during setup ({e}): check that no firewall blocks the ports between \
                    the machines"
            ))
        };
        // Every ring listener is bound before rank 0 sends out addresses, so connecting first cannot deadlock.
        let to_next = connect_retry(&next_addr.to_string(), deadline)
            .map_err(|e| setup_err(&format!("reach rank {next} at {next_addr}"), e))?;
        write_u64s(&to_next, &[MAGIC, rank as u64]).map_err(|e| setup_err(&format!("greet rank {next}"), e))?;
        let from_prev =
            accept_until(&ring_listener, deadline).map_err(|e| setup_err(&format!("accept rank {prev}"), e))?;
        set_read_deadline(&from_prev, deadline)
            .map_err(io("configure", format!("rank {rank}'s link from rank {prev}")))?;
        let hello = read_u64s::<2>(&from_prev).map_err(|e| setup_err(&format!("hear from rank {prev}"), e))?;
        if hello != [MAGIC, prev as u64] {
            return Err(dist(format!(
                "rank {rank} expected rank {prev} on its ring port but got {hello:?}: another job may be using the \
                    same ports"
            )));
        }
        for s in c.star.iter().chain([&to_next, &from_prev]) {
            // No read timeouts once connected: rank 0 may spend minutes evaluating while the others wait.
            s.set_read_timeout(None)
                .and_then(|_| s.set_nodelay(true))
                .map_err(io("configure", format!("rank {rank}'s links")))?;
        }
        c.ring = Some((to_next, from_prev));
        Ok(c)
    }

    /// Rank 0 side of the rendezvous: returns its ring listener and the ring address of rank 1.
    fn serve_rendezvous(&mut self, master: &str, deadline: Instant) -> Result<(TcpListener, SocketAddr), Error> {
        let world = self.world;
        let listener = TcpListener::bind(master).map_err(|e| {
            dist(format!(
                "rank 0 could not listen on {master} ({e}): the port is busy or the address is not on this \
                machine; pick another MASTER_PORT or fix MASTER_ADDR"
            ))
        })?;
        let ring = listener
            .local_addr()
            .and_then(|a| TcpListener::bind((a.ip(), 0)))
            .map_err(io("open", "rank 0's ring port"))?;
        // Indexed by rank: the link to that peer and the address of its ring listener.
        let mut peers: Vec<Option<(TcpStream, SocketAddr)>> = (0..world).map(|_| None).collect();
        for joined in 0..world - 1 {
            let (stream, hello) = loop {
                let stream = accept_until(&listener, deadline).map_err(|e| {
                    dist(format!(
                        "rank 0 waited on {master} but only {joined} of {} peers joined ({e}): start the other \
                        ranks with MASTER_ADDR/MASTER_PORT pointing here, or raise HEARTH_DIST_TIMEOUT_S",
                        world - 1
                    ))
                })?;
                let _ = set_read_deadline(&stream, deadline);
                match read_u64s::<4>(&stream) {
                    Ok(h) if h[0] == MAGIC => break (stream, h),
                    _ => continue, // not a Hearth peer (port scanner, stale job): ignore it
                }
            };
            let (r, w) = (hello[1] as usize, hello[2] as usize);
            let problem = if w != world {
                Some(format!(
                    "world-size mismatch: rank {r} was started with WORLD_SIZE={w} but rank 0 with \
                        WORLD_SIZE={world}: start every rank with the same WORLD_SIZE"
                ))
            } else if r == 0 || r >= world {
                Some(format!(
                    "rank {r} is out of range for WORLD_SIZE={world}: give each process a distinct RANK in 0..{world}"
                ))
            } else if peers[r].is_some() {
                Some(format!("two processes claim rank {r}: give each process a distinct RANK in 0..{world}"))
            } else {
                None
            };
            if let Some(msg) = problem {
                for s in peers.iter().flatten().map(|p| &p.0).chain([&stream]) {
                    let _ = send_frame(s, &[&[1], msg.as_bytes()].concat());
                }
                return Err(dist(msg));
            }
            let peer_ip =
                stream.peer_addr().map_err(|e| dist(format!("rank 0 lost rank {r} during setup ({e})")))?.ip();
            peers[r] = Some((stream, SocketAddr::new(peer_ip, hello[3] as u16)));
        }
        let peers: Vec<(TcpStream, SocketAddr)> = peers.into_iter().skip(1).map(Option::unwrap).collect();
        // Rank world-1 reaches rank 0's ring port via the same local address it used to reach the master.
        let own_ip =
            peers[world - 2].0.local_addr().map_err(|e| dist(format!("rank 0 lost a peer during setup ({e})")))?.ip();
        let own_ring =
            SocketAddr::new(own_ip, ring.local_addr().map_err(io("read the address of", "rank 0's ring port"))?.port());
        for (i, (stream, _)) in peers.iter().enumerate() {
            let next = peers.get(i + 1).map_or(own_ring, |p| p.1);
            send_frame(stream, &[&[0], next.to_string().as_bytes()].concat()).map_err(|e| {
                dist(format!("rank 0 lost rank {} during setup ({e}): a peer process died; see its output", i + 1))
            })?;
        }
        let rank1_ring = peers[0].1;
        self.star = peers.into_iter().map(|p| p.0).collect();
        Ok((ring, rank1_ring))
    }

    /// Peer side of the rendezvous: returns its ring listener and the ring address of its successor.
    fn join_rendezvous(&mut self, master: &str, deadline: Instant) -> Result<(TcpListener, SocketAddr), Error> {
        let (rank, world) = (self.rank, self.world);
        let secs = deadline.saturating_duration_since(Instant::now()).as_secs_f64();
        let stream = connect_retry(master, deadline).map_err(|e| {
            dist(format!(
                "rank {rank} could not reach the master {master} within {secs:.0} s ({e}): start rank 0, or \
                check MASTER_ADDR/MASTER_PORT"
            ))
        })?;
        // Listen on the interface that reaches the master: the others can reach us there too.
        let ring = stream.local_addr().and_then(|a| TcpListener::bind((a.ip(), 0)));
        let ring = ring.map_err(io("open", format!("rank {rank}'s ring port")))?;
        let port = ring.local_addr().map_err(io("read the address of", format!("rank {rank}'s ring port")))?.port();
        let reply = set_read_deadline(&stream, deadline)
            .and_then(|_| write_u64s(&stream, &[MAGIC, rank as u64, world as u64, port as u64]))
            .and_then(|_| recv_frame(&stream))
            .map_err(|e| {
                dist(format!(
                    "rank {rank} got no answer from the master {master} ({e}): not all WORLD_SIZE={world} ranks \
                    started in time, or rank 0 failed; see its output"
                ))
            })?;
        let text = String::from_utf8_lossy(reply.get(1..).unwrap_or_default()).into_owned();
        match reply.first() {
            Some(0) => {
                self.star.push(stream);
                let addr = text
                    .parse()
                    .map_err(|_| dist(format!("rank {rank} got a bad ring address {text:?} from rank 0")))?;
                Ok((ring, addr))
            }
            Some(1) => Err(dist(text)),
            _ => Err(dist(format!(
                "rank {rank} got a malformed reply from the master {master}: is it a Hearth rank 0 of the same version?"
            ))),
        }
    }

    /// torchrun-compatible environment: RANK, WORLD_SIZE, MASTER_ADDR (default 127.0.0.1), MASTER_PORT (default 29500),
    /// HEARTH_DIST_TIMEOUT_S (default 120, for the rendezvous), HEARTH_COLLECTIVE_TIMEOUT_S (default 1800, see
    /// [`TcpCollective::with_collective_timeout`]; 0: none). Ok(None) when WORLD_SIZE is unset or "1".
    pub fn from_env() -> Result<Option<Self>, Error> {
        let Some((master, rank, world, timeout)) = env_config(|k| std::env::var(k).ok())? else { return Ok(None) };
        let wait = collective_timeout(std::env::var("HEARTH_COLLECTIVE_TIMEOUT_S").ok())?;
        Self::connect(&master, rank, world, timeout)?.with_collective_timeout(wait).map(Some)
    }

    /// How long one collective may wait for a peer before it fails (as NCCL's watchdog does, 30 min in
    /// PyTorch): a peer process that dies closes its sockets and fails the others at once, but a machine
    /// that loses power or network closes nothing, and without this the others would wait forever.
    /// It must exceed the longest time rank 0 spends alone (evaluation, a checkpoint).
    pub fn with_collective_timeout(mut self, wait: Option<Duration>) -> Result<Self, Error> {
        for s in self.star.iter().chain(self.ring.iter().flat_map(|(a, b)| [a, b])) {
            s.set_read_timeout(wait)
                .and_then(|_| s.set_write_timeout(wait))
                .map_err(io("set the collective timeout on", format!("rank {}'s links", self.rank)))?;
        }
        self.wait = wait;
        Ok(self)
    }

    pub fn rank(&self) -> usize {
        self.rank
    }

    pub fn world(&self) -> usize {
        self.world
    }

    /// In-place sum across ranks (ring all-reduce); every rank ends with bit-identical results.
    /// Fails if ranks pass vectors of different lengths.
    pub fn all_reduce_sum(&mut self, data: &mut [f32]) -> Result<(), Error> {
        if self.world == 1 {
            return Ok(());
        }
        self.check_same_len(data.len())?;
        let (w, r, n) = (self.world, self.rank, data.len());
        let chunk = |i: usize| (i * n / w)..((i + 1) * n / w);
        // Reduce-scatter: after W-1 steps rank r holds the full sum of chunk r+1.
        for step in 0..w - 1 {
            let (send, recv) = (chunk((r + w - step) % w), chunk((r + 2 * w - step - 1) % w));
            self.exchange(&data[send], recv.len())?;
            for (x, b) in data[recv].iter_mut().zip(self.recv_buf.chunks_exact(4)) {
                *x += f32::from_le_bytes(b.try_into().unwrap());
            }
        }
        // All-gather: pass the finished chunks around the ring.
        for step in 0..w - 1 {
            let (send, recv) = (chunk((r + 1 + w - step) % w), chunk((r + w - step) % w));
            self.exchange(&data[send], recv.len())?;
            for (x, b) in data[recv].iter_mut().zip(self.recv_buf.chunks_exact(4)) {
                *x = f32::from_le_bytes(b.try_into().unwrap());
            }
        }
        Ok(())
    }

    /// Every rank's segment on every rank: `bounds` (world + 1 offsets, the same on every rank) splits `data`; rank r
    /// fills `data[bounds[r]..bounds[r + 1]]` and receives the others' (a ring: W-1 steps, each rank sending one segment
    /// and receiving one, so (W-1)/W·N floats per rank, half an all-reduce's traffic).
    pub fn all_gather(&mut self, data: &mut [f32], bounds: &[usize]) -> Result<(), Error> {
        let (w, r) = (self.world, self.rank);
        if bounds.len() != w + 1 || bounds[0] != 0 || bounds[w] != data.len() || bounds.windows(2).any(|b| b[0] > b[1])
        {
            return Err(dist(format!(
                "all-gather: segment bounds {bounds:?} do not split {} values over {w} ranks",
                data.len()
            )));
        }
        if w == 1 {
            return Ok(());
        }
        self.check_same_len(data.len())?;
        let segment = |i: usize| bounds[i]..bounds[i + 1];
        for step in 0..w - 1 {
            let (send, recv) = (segment((r + w - step) % w), segment((r + 2 * w - step - 1) % w));
            self.exchange(&data[send], recv.len())?;
            for (x, b) in data[recv].iter_mut().zip(self.recv_buf.chunks_exact(4)) {
                *x = f32::from_le_bytes(b.try_into().unwrap());
            }
        }
        Ok(())
    }

    /// Rank 0 receives every rank's bytes (Some, in rank order, its own first); other ranks get None.
    pub fn gather_bytes(&mut self, bytes: &[u8]) -> Result<Option<Vec<Vec<u8>>>, Error> {
        if self.rank != 0 {
            send_frame(&self.star[0], bytes).map_err(|e| self.fail(0, "gather", e))?;
            return Ok(None);
        }
        let mut all = vec![bytes.to_vec()];
        for peer in 1..self.world {
            all.push(recv_frame(&self.star[peer - 1]).map_err(|e| self.fail(peer, "gather", e))?);
        }
        Ok(Some(all))
    }

    /// Rank 0's bytes to every rank (the argument is ignored on other ranks).
    pub fn broadcast_bytes(&mut self, bytes: Vec<u8>) -> Result<Vec<u8>, Error> {
        if self.rank != 0 {
            return recv_frame(&self.star[0]).map_err(|e| self.fail(0, "broadcast", e));
        }
        for peer in 1..self.world {
            send_frame(&self.star[peer - 1], &bytes).map_err(|e| self.fail(peer, "broadcast", e))?;
        }
        Ok(bytes)
    }

    pub fn barrier(&mut self) -> Result<(), Error> {
        self.gather_bytes(&[])?;
        self.broadcast_bytes(Vec::new()).map(drop)
    }

    /// Rank 0 compares every rank's length and tells everyone the verdict, so all ranks fail together.
    fn check_same_len(&mut self, n: usize) -> Result<(), Error> {
        let verdict = match self.gather_bytes(&(n as u64).to_le_bytes())? {
            Some(all) if all.iter().any(|l| *l != all[0]) => {
                let lens: Vec<String> = all
                    .iter()
                    .enumerate()
                    .map(|(r, l)| format!("rank {r}: {}", u64::from_le_bytes(l[..8].try_into().unwrap())))
                    .collect();
                format!(
                    "ranks disagree on the gradient length ({}): every rank must build the same model",
                    lens.join(", ")
                )
            }
            _ => String::new(),
        };
        let verdict = self.broadcast_bytes(verdict.into_bytes())?;
        if verdict.is_empty() { Ok(()) } else { Err(dist(String::from_utf8_lossy(&verdict))) }
    }

    /// Sends `send` to the next rank while receiving `recv_len` floats from the previous one into `recv_buf`.
    /// The write runs on its own thread so that large chunks cannot deadlock on full socket buffers.
    fn exchange(&mut self, send: &[f32], recv_len: usize) -> Result<(), Error> {
        self.send_buf.clear();
        self.send_buf.extend(send.iter().flat_map(|x| x.to_le_bytes()));
        self.recv_buf.resize(recv_len * 4, 0);
        let (to_next, from_prev) = self.ring.as_ref().expect("ring exists when world > 1");
        let (send_buf, recv_buf) = (&self.send_buf, &mut self.recv_buf);
        let (sent, got) = std::thread::scope(|s| {
            let writer = s.spawn(move || (&*to_next).write_all(send_buf));
            let got = (&*from_prev).read_exact(recv_buf);
            if got.is_err() {
                let _ = to_next.shutdown(Shutdown::Both); // unblock the writer
            }
            (writer.join().expect("all-reduce writer thread panicked"), got)
        });
        let (prev, next) = ((self.rank + self.world - 1) % self.world, (self.rank + 1) % self.world);
        got.map_err(|e| self.fail(prev, "all-reduce", e))?;
        sent.map_err(|e| self.fail(next, "all-reduce", e))
    }

    /// Shuts every link down (so blocked neighbours fail too) and describes the broken link.
    fn fail(&self, peer: usize, during: &str, e: io::Error) -> Error {
        for s in self.star.iter().chain(self.ring.iter().flat_map(|(a, b)| [a, b])) {
            let _ = s.shutdown(Shutdown::Both);
        }
        if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) {
            let waited = self.wait.map_or(String::new(), |w| format!(" {:.0} s", w.as_secs_f64()));
            return dist(format!(
                "rank {} waited{waited} for rank {peer} during {during}: that rank is stuck or its machine is gone; \
                    if rank 0's evaluation or checkpoints take that long, raise HEARTH_COLLECTIVE_TIMEOUT_S",
                self.rank
            ));
        }
        dist(format!(
            "rank {} lost its link to rank {peer} during {during} ({e}): a peer process died; see its output",
            self.rank
        ))
    }
}

/// HEARTH_COLLECTIVE_TIMEOUT_S: seconds (default 1800), or 0 for no timeout.
fn collective_timeout(value: Option<String>) -> Result<Option<Duration>, Error> {
    let secs: f64 = match value {
        None => 1800.0,
        Some(v) => v.trim().parse().map_err(|_| {
            dist(format!(
                "HEARTH_COLLECTIVE_TIMEOUT_S={v:?} is not a number of seconds: fix or unset it (0: no timeout)"
            ))
        })?,
    };
    match secs {
        s if s == 0.0 => Ok(None),
        s if s > 0.0 && s.is_finite() => Ok(Some(Duration::from_secs_f64(s))),
        s => Err(dist(format!("HEARTH_COLLECTIVE_TIMEOUT_S={s} must be a positive number of seconds, or 0 for none"))),
    }
}

/// Parses the torchrun variables: Ok(None) for a single process, else (master, rank, world, timeout).
fn env_config(get: impl Fn(&str) -> Option<String>) -> Result<Option<(String, usize, usize, Duration)>, Error> {
    fn parse<T: std::str::FromStr>(name: &str, value: Option<String>, default: Option<T>) -> Result<T, Error> {
        match (value, default) {
            (Some(v), _) => {
                v.trim().parse().map_err(|_| dist(format!("{name}={v:?} is not a valid number: fix or unset {name}")))
            }
            (None, Some(d)) => Ok(d),
            (None, None) => Err(dist(format!(
                "{name} is not set but WORLD_SIZE is: set {name} for every process (hearth launch does)"
            ))),
        }
    }
    let world: usize = match get("WORLD_SIZE") {
        None => return Ok(None),
        v => parse("WORLD_SIZE", v, None)?,
    };
    if world <= 1 {
        return if world == 1 { Ok(None) } else { Err(dist("WORLD_SIZE=0 is invalid: it must be at least 1")) };
    }
    let rank: usize = parse("RANK", get("RANK"), None)?;
    if rank >= world {
        return Err(dist(format!("RANK={rank} is out of range for WORLD_SIZE={world}: RANK must be in 0..WORLD_SIZE")));
    }
    let addr = get("MASTER_ADDR").unwrap_or_else(|| "127.0.0.1".into());
    let port: u16 = parse("MASTER_PORT", get("MASTER_PORT"), Some(29500))?;
    let secs: f64 = parse("HEARTH_DIST_TIMEOUT_S", get("HEARTH_DIST_TIMEOUT_S"), Some(120.0))?;
    if !(secs > 0.0 && secs.is_finite()) {
        return Err(dist(format!("HEARTH_DIST_TIMEOUT_S={secs} must be a positive number of seconds")));
    }
    let host = if addr.contains(':') && !addr.starts_with('[') { format!("[{addr}]") } else { addr };
    Ok(Some((format!("{host}:{port}"), rank, world, Duration::from_secs_f64(secs))))
}

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1))
}

fn set_read_deadline(s: &TcpStream, deadline: Instant) -> io::Result<()> {
    s.set_read_timeout(Some(remaining(deadline)))
}

/// Connects to `addr`, retrying (and re-resolving) until `deadline`; returns the last error on timeout.
fn connect_retry(addr: &str, deadline: Instant) -> io::Result<TcpStream> {
    loop {
        let err = match addr.to_socket_addrs() {
            Ok(addrs) => {
                let mut last = io::Error::new(io::ErrorKind::NotFound, "address resolved to nothing");
                for a in addrs {
                    match TcpStream::connect_timeout(&a, remaining(deadline).min(Duration::from_secs(5))) {
                        Ok(s) => return Ok(s),
                        Err(e) => last = e,
                    }
                }
                last
            }
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            return Err(err);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn accept_until(listener: &TcpListener, deadline: Instant) -> io::Result<TcpStream> {
    listener.set_nonblocking(true)?;
    loop {
        match listener.accept() {
            Ok((s, _)) => return s.set_nonblocking(false).map(|_| s),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(io::ErrorKind::TimedOut.into()),
            Err(e) => return Err(e),
        }
    }
}

fn write_u64s(mut s: &TcpStream, values: &[u64]) -> io::Result<()> {
    s.write_all(&values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>())
}

fn read_u64s<const N: usize>(mut s: &TcpStream) -> io::Result<[u64; N]> {
    let mut out = [0u64; N];
    for v in &mut out {
        let mut b = [0u8; 8];
        s.read_exact(&mut b)?;
        *v = u64::from_le_bytes(b);
    }
    Ok(out)
}

/// A frame is a little-endian u64 length followed by that many bytes.
fn send_frame(mut s: &TcpStream, bytes: &[u8]) -> io::Result<()> {
    s.write_all(&(bytes.len() as u64).to_le_bytes())?;
    s.write_all(bytes)
}

fn recv_frame(mut s: &TcpStream) -> io::Result<Vec<u8>> {
    let [len] = read_u64s::<1>(s)?;
    let mut buf = vec![0u8; len as usize];
    s.read_exact(&mut buf)?;
    Ok(buf)
}

/// A failure of the ring or its rendezvous (`Error::Distributed`): a peer, the ranks' agreement, a
/// setting; a socket this process could not set up is an `Error::Io` naming it.
fn dist(message: impl Into<String>) -> Error {
    Error::Distributed(message.into())
}

/// The trainer's view of the ring (see `hearth_core::parallel`).
impl Collective for TcpCollective {
    fn rank(&self) -> usize {
        TcpCollective::rank(self)
    }
    fn world(&self) -> usize {
        TcpCollective::world(self)
    }
    fn all_reduce_sum(&mut self, data: &mut [f32]) -> hearth_core::Result<()> {
        TcpCollective::all_reduce_sum(self, data)
    }
    fn all_gather(&mut self, data: &mut [f32], bounds: &[usize]) -> hearth_core::Result<()> {
        TcpCollective::all_gather(self, data, bounds)
    }
    fn gather_bytes(&mut self, bytes: &[u8]) -> hearth_core::Result<Option<Vec<Vec<u8>>>> {
        TcpCollective::gather_bytes(self, bytes)
    }
    fn broadcast_bytes(&mut self, bytes: Vec<u8>) -> hearth_core::Result<Vec<u8>> {
        TcpCollective::broadcast_bytes(self, bytes)
    }
    fn barrier(&mut self) -> hearth_core::Result<()> {
        TcpCollective::barrier(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free_addr() -> String {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    }

    /// Runs `f(rank, connect result)` on one thread per entry of `ranks` (rank, world) against a fresh master port.
    fn spawn<T: Send>(ranks: &[(usize, usize)], f: impl Fn(usize, Result<TcpCollective, Error>) -> T + Sync) -> Vec<T> {
        let master = free_addr();
        std::thread::scope(|s| {
            let handles: Vec<_> = ranks
                .iter()
                .map(|&(r, w)| {
                    let (f, master) = (&f, &master);
                    s.spawn(move || f(r, TcpCollective::connect(master, r, w, Duration::from_secs(20))))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    fn world(w: usize) -> Vec<(usize, usize)> {
        (0..w).map(|r| (r, w)).collect()
    }

    fn input(rank: usize, n: usize) -> Vec<f32> {
        (0..n).map(|i| ((i * 7919 + rank * 104_729) % 2003) as f32 / 1001.0 - 1.0).collect()
    }

    fn check_all_reduce(w: usize, n: usize) {
        let results = spawn(&world(w), |r, c| {
            let mut data = input(r, n);
            c.unwrap().all_reduce_sum(&mut data).unwrap();
            data
        });
        let inputs: Vec<Vec<f32>> = (0..w).map(|r| input(r, n)).collect();
        for i in 0..n {
            let expected: f32 = inputs.iter().map(|v| v[i]).sum();
            let tol = 1e-5 * inputs.iter().map(|v| v[i].abs()).sum::<f32>().max(1.0);
            assert!((results[0][i] - expected).abs() <= tol, "w={w} n={n} i={i}: {} vs {expected}", results[0][i]);
        }
        for r in &results {
            assert_eq!(
                r.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                results[0].iter().map(|x| x.to_bits()).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn all_reduce_small_lengths() {
        for w in 2..=4 {
            for n in [0, 1, 2, 3, 5, 7, 1001] {
                check_all_reduce(w, n);
            }
        }
    }

    #[test]
    fn all_reduce_large_and_deterministic() {
        let n = 4 << 20;
        let run = || {
            spawn(&world(4), |r, c| {
                let mut c = c.unwrap();
                let mut data = input(r, n);
                c.all_reduce_sum(&mut data).unwrap();
                c.all_reduce_sum(&mut data).unwrap(); // reuse the links and buffers
                data.iter().map(|x| x.to_bits()).collect::<Vec<u32>>()
            })
        };
        let (a, b) = (run(), run());
        assert!(a.iter().all(|r| *r == a[0]) && a == b);
        let inputs: Vec<Vec<f32>> = (0..4).map(|r| input(r, n)).collect();
        for i in 0..n {
            let expected = 4.0 * inputs.iter().map(|v| v[i]).sum::<f32>();
            assert!((f32::from_bits(a[0][i]) - expected).abs() <= 1e-5 * expected.abs().max(1.0));
        }
    }

    #[test]
    fn gather_broadcast_barrier() {
        let out = spawn(&world(3), |r, c| {
            let mut c = c.unwrap();
            assert_eq!((c.rank(), c.world()), (r, 3));
            let gathered = c.gather_bytes(&vec![r as u8; r * 1000]).unwrap();
            c.barrier().unwrap();
            let b = c.broadcast_bytes(if r == 0 { b"from rank 0".to_vec() } else { vec![9] }).unwrap();
            c.barrier().unwrap();
            (gathered, b)
        });
        let expected: Vec<Vec<u8>> = (0..3).map(|r| vec![r as u8; r * 1000]).collect();
        assert_eq!(out[0].0.as_ref(), Some(&expected));
        assert!(out[1].0.is_none() && out[2].0.is_none());
        assert!(out.iter().all(|o| o.1 == b"from rank 0"));
    }

    #[test]
    fn world_of_one() {
        let mut c = TcpCollective::connect("not-a-host:1", 0, 1, Duration::ZERO).unwrap();
        let mut data = vec![1.5, 2.5];
        c.all_reduce_sum(&mut data).unwrap();
        assert_eq!(data, [1.5, 2.5]);
        assert_eq!(c.gather_bytes(b"x").unwrap(), Some(vec![b"x".to_vec()]));
        assert_eq!(c.broadcast_bytes(b"y".to_vec()).unwrap(), b"y");
        c.barrier().unwrap();
        assert!(
            TcpCollective::connect("127.0.0.1:1", 2, 2, Duration::ZERO)
                .unwrap_err()
                .to_string()
                .contains("invalid rank")
        );
    }

    #[test]
    fn setup_errors() {
        let errs = spawn(&[(0, 2), (1, 3)], |_, c| c.err().unwrap().to_string());
        assert!(errs.iter().all(|e| e.contains("world-size mismatch")), "{errs:?}");
        let errs = spawn(&[(0, 3), (1, 3), (1, 3)], |_, c| c.err().unwrap().to_string());
        assert!(errs.iter().all(|e| e.contains("two processes claim rank 1")), "{errs:?}");
        let err = TcpCollective::connect(&free_addr(), 1, 2, Duration::from_millis(300)).err().unwrap().to_string();
        assert!(
            err.starts_with("distributed: rank 1 could not reach the master 127.0.0.1:")
                && err.contains("start rank 0"),
            "{err}"
        );
        let err = TcpCollective::connect(&free_addr(), 0, 3, Duration::from_millis(300)).err().unwrap().to_string();
        assert!(err.contains("only 0 of 2 peers joined"), "{err}");
    }

    #[test]
    fn length_mismatch() {
        let errs =
            spawn(&world(2), |r, c| c.unwrap().all_reduce_sum(&mut vec![0.0; 10 + 2 * r]).unwrap_err().to_string());
        for e in errs {
            assert_eq!(
                e,
                "distributed: ranks disagree on the gradient length (rank 0: 10, rank 1: 12): every rank must build the same model"
            );
        }
    }

    #[test]
    fn all_gather_of_uneven_segments() {
        for w in [2, 3, 4] {
            // Segments of different sizes, one of them empty.
            let sizes: Vec<usize> = (0..w).map(|r| [5, 0, 3, 1001][r]).collect();
            let bounds: Vec<usize> = std::iter::once(0)
                .chain(sizes.iter().scan(0, |a, s| {
                    *a += s;
                    Some(*a)
                }))
                .collect();
            let n = bounds[w];
            let expected: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 7.0).collect();
            let results = spawn(&world(w), |r, c| {
                let mut data = vec![f32::NAN; n];
                data[bounds[r]..bounds[r + 1]].copy_from_slice(&expected[bounds[r]..bounds[r + 1]]);
                c.unwrap().all_gather(&mut data, &bounds).unwrap();
                data
            });
            for data in results {
                assert_eq!(data, expected, "w={w}");
            }
        }
        let err = spawn(&world(1), |_, c| c.unwrap().all_gather(&mut [0.0; 3], &[0, 2]).unwrap_err().to_string());
        assert!(err[0].contains("do not split 3 values"), "{}", err[0]);
    }

    #[test]
    fn a_stuck_peer_times_out_with_the_fix_named() {
        // Rank 1 stays connected but never joins the all-reduce (a hung process, a machine gone
        // without closing its sockets): rank 0 gives up after its collective timeout.
        let out = spawn(&world(2), |r, c| {
            let mut c = c.unwrap().with_collective_timeout(Some(Duration::from_millis(300))).unwrap();
            if r == 1 {
                std::thread::sleep(Duration::from_millis(1500));
                return None;
            }
            let start = Instant::now();
            let err = c.all_reduce_sum(&mut [1.0; 8]).unwrap_err().to_string();
            Some((err, start.elapsed()))
        });
        let (err, waited) = out[0].clone().unwrap();
        assert!(err.contains("waited 0 s for rank 1") && err.contains("HEARTH_COLLECTIVE_TIMEOUT_S"), "{err}");
        assert!(waited < Duration::from_millis(1400), "gave up after {waited:?}");
        assert_eq!(collective_timeout(None).unwrap(), Some(Duration::from_secs(1800)));
        assert_eq!(collective_timeout(Some("0".into())).unwrap(), None);
        assert!(collective_timeout(Some("-1".into())).unwrap_err().to_string().contains("HEARTH_COLLECTIVE_TIMEOUT_S"));
    }

    #[test]
    fn dead_peer_is_an_error_not_a_hang() {
        let out = spawn(&world(3), |r, c| {
            let mut c = c.unwrap();
            c.barrier().unwrap();
            if r == 2 {
                return None; // dies: its sockets close
            }
            Some(c.all_reduce_sum(&mut vec![1.0; 1000]).unwrap_err().to_string())
        });
        assert!(
            out[..2].iter().flatten().all(|e| e.contains("lost its link") && e.contains("a peer process died")),
            "{out:?}"
        );
    }

    #[test]
    fn peer_dying_inside_the_ring() {
        // Rank 1 passes the length check, then vanishes before the ring exchange: the others must fail, not hang.
        let out = spawn(&world(3), |r, c| {
            let mut c = c.unwrap();
            if r == 1 {
                c.check_same_len(1 << 20).unwrap();
                return None;
            }
            Some(c.all_reduce_sum(&mut vec![1.0; 1 << 20]).unwrap_err().to_string())
        });
        assert!(out.iter().flatten().all(|e| e.contains("during all-reduce")), "{out:?}");
    }

    #[test]
    fn env_parsing() {
        let cfg = |vars: &[(&str, &str)]| {
            let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            env_config(move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
        };
        assert_eq!(cfg(&[]).unwrap(), None);
        assert_eq!(cfg(&[("WORLD_SIZE", "1"), ("RANK", "0")]).unwrap(), None);
        let two = Some(("127.0.0.1:29500".to_string(), 1, 2, Duration::from_secs(120)));
        assert_eq!(cfg(&[("WORLD_SIZE", "2"), ("RANK", "1")]).unwrap(), two);
        let v6 = [
            ("WORLD_SIZE", "4"),
            ("RANK", "0"),
            ("MASTER_ADDR", "::1"),
            ("MASTER_PORT", "7"),
            ("HEARTH_DIST_TIMEOUT_S", "2.5"),
        ];
        assert_eq!(cfg(&v6).unwrap(), Some(("[::1]:7".to_string(), 0, 4, Duration::from_millis(2500))));
        assert!(cfg(&[("WORLD_SIZE", "two")]).unwrap_err().to_string().contains("WORLD_SIZE"));
        assert!(cfg(&[("WORLD_SIZE", "2")]).unwrap_err().to_string().starts_with("distributed: RANK is not set"));
        assert!(cfg(&[("WORLD_SIZE", "2"), ("RANK", "2")]).unwrap_err().to_string().contains("out of range"));
        assert!(
            cfg(&[("WORLD_SIZE", "2"), ("RANK", "0"), ("MASTER_PORT", "70000")])
                .unwrap_err()
                .to_string()
                .contains("MASTER_PORT")
        );
        let bad_timeout = [("WORLD_SIZE", "2"), ("RANK", "0"), ("HEARTH_DIST_TIMEOUT_S", "-1")];
        assert!(cfg(&bad_timeout).unwrap_err().to_string().contains("HEARTH_DIST_TIMEOUT_S"));
    }
}
