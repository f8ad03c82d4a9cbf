import Ember
import Foundation
import Testing
import _EmberTestSupport

private func csvError(
    _ text: String, hasHeader: Bool = true, label: CSVColumn? = nil, labels: CSVLabels = .integers, excluding: [CSVColumn] = []
) -> DataError? {
    dataError { () throws(DataError) in
        try CSV.decode(Data(text.utf8), file: "bad.csv", hasHeader: hasHeader, label: label, labels: labels, excluding: excluding)
    }
}

private func table(
    _ text: String, hasHeader: Bool = true, delimiter: Character = ",", label: CSVColumn? = nil, allowNonFinite: Bool = false
) throws -> CSVTable {
    try CSV.decode(Data(text.utf8), hasHeader: hasHeader, delimiter: delimiter, label: label, allowNonFinite: allowNonFinite)
}

@Suite struct CSVReaderTests {
    // MARK: Good files

    @Test func readsAHeaderQuotedFieldsAndClassNames() throws {
        let e = DataFixtures.entry("iris_sample.csv")
        let t = try CSV.read(contentsOf: DataFixtures.path("iris_sample.csv"), label: "species", labels: .categories, excluding: ["id"])
        #expect(t.featureNames == e.featureNames!)
        #expect(t.labelName == e.labelName)
        #expect(t.classNames == e.classNames!)
        #expect(t.features.shape == [5, 2] && t.features.dtype == .float32)
        expectHostValues(t.features, equal: e.features32!, "float32 features")
        #expect(t.labels?.int64s == e.labels!)
        #expect(t.rowCount == 5)

        let t64 = try CSV.read(contentsOf: DataFixtures.path("iris_sample.csv"), label: -1, labels: .categories, excluding: [0], dtype: .float64)
        expectHostValues(t64.features, equal: e.features64!, "float64 features parsed directly")
        #expect(t64.labels == t.labels)
    }

    @Test func readsAFileWithoutHeaderWithTheLabelFirst() throws {
        let e = DataFixtures.entry("noheader.csv")
        let t = try CSV.read(contentsOf: DataFixtures.path("noheader.csv"), hasHeader: false, label: 0)
        #expect(t.features.shape == [5, 4])
        expectHostValues(t.features, equal: e.features32!, "pixels")
        #expect(t.labels?.int64s == e.labels!)
        #expect(t.featureNames == ["column2", "column3", "column4", "column5"])
        #expect(t.labelName == "column1")
        let data = t.dataset()
        #expect(data.count == 5 && data[4].label.int64s == [e.labels![4]])
    }

    @Test func everyColumnIsAFeatureWithoutALabel() throws {
        let t = try table("a;b\n1;2\n3;4\n", delimiter: ";")
        #expect(t.features == HostTensor([1, 2, 3, 4] as [Float], shape: [2, 2]))
        #expect(t.labels == nil && t.featureNames == ["a", "b"])
    }

    @Test func acceptsSpecialValuesBOMsTabsAndLoneCarriageReturns() throws {
        let t = try table("\u{FEFF}x\ty\r nan\t-inf\r1e3\t\"2\"\r", delimiter: "\t", allowNonFinite: true)
        #expect(t.featureNames == ["x", "y"])
        let v = t.features.floats
        #expect(v.count == 4 && v[0].isNaN && v[1] == -.infinity && v[2] == 1000 && v[3] == 2)
    }

    @Test func shortIntegersTakeAFastPathThatAgreesWithTheFullParser() throws {
        let cells = ["-0", "+5", "007", "42", "999999", "-999999", "1234567", "16777217", "9007199254740993", "0.1", "-", "+", "1-2", "5 5"]
        for cell in cells {
            let line = Data((cell + "\n").utf8)
            if let expected = Float(cell) {
                let got = try CSV.decode(line, hasHeader: false).features.floats[0]
                #expect(got.bitPattern == expected.bitPattern, "\(cell): \(got) vs \(expected)")
                let got64 = try CSV.decode(line, hasHeader: false, dtype: .float64).features.doubles[0]
                #expect(got64.bitPattern == Double(cell)!.bitPattern, "\(cell) as float64")
            } else {
                let e = dataError { () throws(DataError) in try CSV.decode(line, hasHeader: false) }
                #expect(e == .csv(file: "<memory>", line: 1, column: 1, expected: "a number", found: "\"\(cell)\""), "\(cell)")
            }
        }
    }

    @Test func aQuotedFieldMaySpanLinesAndLineNumbersFollow() throws {
        // The quoted header spans lines 1-2; the error on line 4 must say line 4.
        let text = "\"a\nb\",c\n1,2\n3,x\n"
        #expect(csvError(text) == .csv(file: "bad.csv", line: 4, column: 2, expected: "a number in column \"c\"", found: "\"x\""))
        let t = try table("\"a\nb\",c\n1,2\n")
        #expect(t.featureNames == ["a\nb", "c"])
    }

    @Test func emptyInputs() throws {
        #expect(csvError("") == .csv(file: "bad.csv", line: 1, column: 0, expected: "a header row", found: "an empty file"))
        let headerOnly = try table("a,b\n")
        #expect(headerOnly.features.shape == [0, 2])
        let nothing = try table("", hasHeader: false)
        #expect(nothing.features.shape == [0, 0])
    }

    // MARK: Malformed files: the error names line and column

    @Test func aNonNumericCellNamesLineAndColumn() {
        let e = csvError("a,b,label\n1,2,0\n3,oops,1\n", label: "label")
        #expect(e == .csv(file: "bad.csv", line: 3, column: 2, expected: "a number in column \"b\"", found: "\"oops\""))
        #expect(e?.description == "bad.csv:3: column 2: expected a number in column \"b\", found \"oops\"")
        #expect(csvError("1,,3\n", hasHeader: false) == .csv(file: "bad.csv", line: 1, column: 2, expected: "a number", found: "an empty field"))
    }

    @Test func raggedRowsAreRefused() {
        #expect(csvError("a,b,c\n1,2,3\n4,5\n") == .csv(file: "bad.csv", line: 3, column: 3,
                                                        expected: "3 fields, as in the header (line 1)", found: "2 fields"))
        #expect(csvError("1,2\n3,4,5\n", hasHeader: false) == .csv(file: "bad.csv", line: 2, column: 3,
                                                                   expected: "2 fields, as in the first row (line 1)", found: "3 fields"))
        #expect(csvError("a,b\n1,2\n\n\n7\n") == .csv(file: "bad.csv", line: 5, column: 2,
                                                      expected: "2 fields, as in the header (line 1)", found: "1 field"))
    }

    @Test func quotingErrors() {
        #expect(csvError("a,b\n1,\"2\n3,4\n") == .csv(file: "bad.csv", line: 2, column: 2,
                                                      expected: "a closing quote (\") for the quoted field that starts here", found: "the end of the file"))
        #expect(csvError("a,b\n1,\"2\"x,3\n") == .csv(file: "bad.csv", line: 2, column: 2,
                                                      expected: "a delimiter or the end of the line after the closing quote", found: "\"x\""))
    }

    @Test func labelErrors() {
        #expect(csvError("a,label\n1,2\n3,cat\n", label: "label") == .csv(file: "bad.csv", line: 3, column: 2,
                                                                           expected: "an integer class label in column \"label\"", found: "\"cat\""))
        #expect(csvError("a,label\n1,\n", label: "label", labels: .categories) == .csv(file: "bad.csv", line: 2, column: 2,
                                                                                        expected: "a class name in column \"label\"", found: "an empty field"))
        #expect(csvError("a,b\n1,2\n", label: "species") == .csv(file: "bad.csv", line: 1, column: 0,
                                                                 expected: "a column named \"species\" in the header (the label column)", found: "the columns \"a\", \"b\""))
        #expect(csvError("1,2\n", hasHeader: false, label: 5) == .csv(file: "bad.csv", line: 1, column: 0,
                                                                      expected: "the label column index 5 to be in -2..<2", found: "rows of 2 fields"))
        #expect(csvError("a,b\n1,2\n", excluding: ["id"]) == .csv(file: "bad.csv", line: 1, column: 0,
                                                                  expected: "a column named \"id\" in the header (an excluded column)", found: "the columns \"a\", \"b\""))
    }

    @Test func wrongFileTypesFailWithALocation() throws {
        // An .npy file read as CSV: its binary header is not numbers.
        let npy = try DataFixtures.bytes("f4.npy")
        let e = dataError { () throws(DataError) in try CSV.decode(npy, file: "f4.npy", hasHeader: false) }
        guard case .csv(let file, let line, let column, _, _)? = e else { Issue.record("\(String(describing: e))"); return }
        #expect(file == "f4.npy" && line >= 1 && column >= 1)
    }

    @Test func randomGarbageNeverCrashes() throws {
        let full = try DataFixtures.bytes("iris_sample.csv")
        var g = Generator(seed: 8)
        let alphabet = Array("0123456789,\"\r\n .eE-x".utf8)
        for _ in 0..<500 {
            var bytes = full
            for _ in 0..<Int.random(in: 1...5, using: &g) {
                bytes[Int.random(in: 0..<bytes.count, using: &g)] = alphabet.randomElement(using: &g)!
            }
            _ = dataError { () throws(DataError) in
                try CSV.decode(bytes, label: -1, labels: .categories, excluding: [0])
            }
        }
    }

    @Test func programmerErrorsStopWithAClearMessage() async {
        var r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = try? CSV.decode(Data("1,2\n".utf8), hasHeader: false, label: "species")
        }
        #expect(standardErrorText(r).contains("the label column \"species\" is given by name, but hasHeader is false"))
        r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = try? CSV.decode(Data("a,b\n1,2\n".utf8)).dataset()
        }
        #expect(standardErrorText(r).contains("the table has no labels; pass label: to CSV.read"))
        r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = try? CSV.decode(Data("a\n".utf8), delimiter: "\"")
        }
        #expect(standardErrorText(r).contains("the delimiter must be an ASCII character other than a quote or a line break"))
    }

    @Test func unreadableFile() {
        let e = dataError { () throws(DataError) in try CSV.read(contentsOf: "/nonexistent.csv") }
        guard case .unreadable(let file, _)? = e else { Issue.record("\(String(describing: e))"); return }
        #expect(file == "/nonexistent.csv")
    }
}
