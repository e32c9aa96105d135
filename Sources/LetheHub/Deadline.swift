import Foundation
import Synchronization

/// The first of a body's result and its deadline, delivered once.
final class DeadlineOutcome<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<T, any Error>?
    private var early: Result<T, any Error>?
    var onCancel: (@Sendable () -> Void)? {
        get { lock.withLock { _onCancel } }
        set { lock.withLock { _onCancel = newValue } }
    }
    private var _onCancel: (@Sendable () -> Void)?
    /// Called once when a result is delivered (the deadline's ticket is dropped).
    var onFinish: (@Sendable () -> Void)? {
        get { lock.withLock { _onFinish } }
        set {
            let finished: Bool = lock.withLock {
                _onFinish = newValue
                return done
            }
            if finished { newValue?() }
        }
    }
    private var _onFinish: (@Sendable () -> Void)?
    private var done = false

    func arm(_ continuation: CheckedContinuation<T, any Error>) {
        let pending: Result<T, any Error>? = lock.withLock {
            if let early { return early }
            self.continuation = continuation
            return nil
        }
        if let pending { continuation.resume(with: pending) }
    }

    /// Delivers `result` unless something was delivered already; true when this one was.
    @discardableResult
    func finish(_ result: Result<T, any Error>) -> Bool {
        var target: CheckedContinuation<T, any Error>?
        let delivered: Bool = lock.withLock {
            guard !done else { return false }
            done = true
            if let continuation {
                target = continuation
                self.continuation = nil
            } else {
                early = result
            }
            return true
        }
        target?.resume(with: result)
        if delivered { onFinish?() }
        return delivered
    }

    /// The caller was cancelled: answer at once and stop the body.
    func cancel() {
        if finish(.failure(CancellationError())) { onCancel?() }
    }
}

/// Every pending query's deadline, checked by one task ten times a second: a query past its
/// deadline is answered with an error (the pool or the database did not answer).
final class DeadlineSweeper: Sendable {
    private struct Pending {
        var deadline: ContinuousClock.Instant
        var expire: @Sendable () -> Void
    }

    private let state = Mutex<(next: UInt64, pending: [UInt64: Pending])>((0, [:]))

    /// Registers `expire` to run `seconds` from now (give or take the sweep interval).
    func add(after seconds: Double, _ expire: @escaping @Sendable () -> Void) -> UInt64 {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        return state.withLock { state in
            state.next += 1
            state.pending[state.next] = Pending(deadline: deadline, expire: expire)
            return state.next
        }
    }

    /// Drops a deadline that is no longer needed.
    func remove(_ ticket: UInt64) {
        _ = state.withLock { $0.pending.removeValue(forKey: ticket) }
    }

    /// Sweeps until cancelled.
    func run() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(100))
            let now = ContinuousClock.now
            let expired: [Pending] = state.withLock { state in
                let due = state.pending.filter { $0.value.deadline <= now }
                for key in due.keys { state.pending.removeValue(forKey: key) }
                return Array(due.values)
            }
            for item in expired { item.expire() }
        }
    }
}
