import Ember
import Testing
import _EmberTestSupport

/// The async `withMode` overload: it switches the tree and restores each module's previous mode,
/// after a suspension and after a throw.
@Suite struct ScopedModeAsyncTests {
    /// Suspends, so the closure is async and only the async overload can take it.
    func modesAfterSuspension(_ m: Module) async -> [Bool] {
        await Task.yield()
        return m.modules().map(\.isTraining)
    }

    @Test func asyncScopeSwitchesAndRestoresMixedModes() async {
        let m = TwoProbes()
        m.a.eval()
        m.inner[0].pin(.training)
        let before = m.modules().map(\.isTraining)
        let inside = await m.withMode(.evaluation) { await modesAfterSuspension(m) }
        #expect(inside == [false, false, false, true], "eval everywhere except the module pinned to train")
        #expect(m.modules().map(\.isTraining) == before)
        #expect(m.inner[0].pinnedMode == .training)
    }

    @Test func asyncScopeRestoresOnThrowAndNests() async {
        let m = TwoProbes()
        m.b.eval()
        let before = m.modules().map(\.isTraining)
        await #expect(throws: ScopeFailure.self) {
            try await m.withMode(.evaluation) {
                await Task.yield()
                #expect(m.modules().allSatisfy { !$0.isTraining })
                try await m.withMode(.training) {
                    await Task.yield()
                    #expect(m.modules().allSatisfy { $0.isTraining })
                }
                #expect(m.modules().allSatisfy { !$0.isTraining }, "the inner async scope restored the outer one")
                throw ScopeFailure()
            }
        }
        #expect(m.modules().map(\.isTraining) == before)
    }
}
