import Ember
import Testing
import _EmberTestSupport

/// `didChangeMode` runs once per actual change, never for a call that leaves the mode as it was.
@Suite struct ModeNotificationTests {
    @Test func repeatedCallsNotifyOnlyOnChange() {
        let m = TwoProbes()
        m.eval()
        m.eval()
        #expect(m.a.changes == 1 && m.inner[0].changes == 1)
        m.train()
        m.train()
        #expect(m.a.changes == 2)
        m.a.pin(.training)
        #expect(m.a.changes == 2, "pinning to the current mode is no change")
        m.evaluating {}
        #expect(m.a.changes == 2 && m.b.changes == 4, "a scope switches b and restores it")
    }
}
