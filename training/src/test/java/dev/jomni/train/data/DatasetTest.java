package dev.jomni.train.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.train.Fixtures;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DatasetTest {
    @TempDir Path dir;

    @Test
    void loadsMmarMetaRecordsWithChoicesAnswerAndTags() throws IOException {
        Dataset d = Dataset.load(Fixtures.mmar(dir));
        assertEquals(4, d.size());
        AudioQa q = d.items().getFirst();
        assertEquals("f0VchKwpMAk_00-11-10_00-11-30", q.id());
        assertEquals(List.of("Owl", "Robot", "Rooster", "Parrot"), q.choices());
        assertEquals(3, q.answerIndex());
        assertEquals('D', q.answerLetter());
        assertFalse(q.choicesInQuestion());
        assertEquals("Semantic Layer", q.category());
        assertEquals("Speaker Analysis", q.subCategory());
        assertEquals("mix-sound-speech", q.tag("modality"));
        assertEquals("en", q.tag("language"));
        assertNull(d.items().get(1).tag("language"), "a null field is no tag");
        assertEquals("What type of vehicle is most likely in this audio segment?\n", d.items().get(1).question(),
                "the raw question is kept: the MMAR prompts use it unstripped");
    }

    @Test
    void mmarAudioPathResolvesUnderTheAudioRootDefaultingToTheDataFilesFolder() throws IOException {
        Path file = Fixtures.mmar(dir);
        Dataset d = Dataset.load(file);
        assertEquals(dir.resolve("audio/f0VchKwpMAk_00-11-10_00-11-30.wav").toAbsolutePath(), d.items().getFirst().audio());
        Path elsewhere = Files.createDirectories(dir.resolve("meta"));
        Path moved = Files.copy(file, elsewhere.resolve("m.json"));
        Dataset d2 = Dataset.load(moved, LoadOptions.defaults().withAudioDir(dir));
        assertEquals(d.items().getFirst().audio(), d2.items().getFirst().audio());
    }

    @Test
    void answerEqualToOneChoiceUpToSpacesResolvesToThatChoice() throws IOException {
        AudioQa q = Dataset.load(Fixtures.mmar(dir)).byId().get("Txj3Qv1lJgs_00-00-00_00-00-16");
        assertEquals(3, q.answerIndex());
        assertEquals("2040", q.answer());
        assertEquals("2040 ", q.answerChoice());
    }

    @Test
    void seedRecordsResolveAudioAsAudioDirThenRecordAudioDirThenSound() throws IOException {
        Dataset d = Dataset.load(Fixtures.audioSkills(dir, "audioskills.json"));
        var byId = d.byId();
        assertEquals(dir.resolve("countingqa_audioskills/counting_audios/concat_1024.wav").toAbsolutePath(),
                byId.get("countingqa_1024").audio());
        assertEquals(dir.resolve("audio/3Rz18q3p-zY_00-00-00_00-00-21.wav").toAbsolutePath(),
                byId.get("3Rz18q3p-zY_00-00-00_00-00-21").audio());
        assertEquals(dir.resolve("tacos_5.wav").toAbsolutePath(), byId.get("tacos_5").audio(),
                "no audio_dir: audio root / sound, not rest/train.py's file-name guess");
    }

    @Test
    void absoluteRecordAudioDirRestartsThePathAsPythonJoinDoes() throws IOException {
        Path abs = Files.createDirectories(dir.resolve("elsewhere"));
        Fixtures.wav(abs.resolve("x.wav"));
        Path file = dir.resolve("abs.json");
        Files.writeString(file, "[{\"id\":\"x\",\"sound\":\"x.wav\",\"audio_dir\":\"" + abs
                + "\",\"question\":\"Q\\n(A) a\\n(B) b\",\"answer\":\"a\"}]");
        assertEquals(abs.resolve("x.wav"), Dataset.load(file, LoadOptions.defaults().withAudioDir(dir.resolve("unused")))
                .items().getFirst().audio());
    }

    @Test
    void choicesAreParsedFromLetteredLinesOrAChoicesList() throws IOException {
        var byId = Dataset.load(Fixtures.audioSkills(dir, "audioskills.json")).byId();
        AudioQa counting = byId.get("countingqa_1024");
        assertEquals(List.of("Two times", "Four times", "Three times", "Once"), counting.choices());
        assertEquals(2, counting.answerIndex());
        assertTrue(counting.choicesInQuestion());
        AudioQa dashed = byId.get("3Rz18q3p-zY_00-00-00_00-00-21");
        assertEquals(List.of("Speech is too fast", "Speaking volume is too low", "Stuttering", "Unclear pronunciation"),
                dashed.choices());
        assertEquals(2, dashed.answerIndex());
        assertEquals("Professional Knowledge and Reasoning", dashed.subCategory(), "sub_category is read as sub-category");
        assertTrue(dashed.response().startsWith("<think>\n"));
        AudioQa tacos = byId.get("tacos_5");
        assertEquals(1, tacos.answerIndex(), "'(B) Footsteps' names option B by letter and text");
    }

    @Test
    void conversationRecordTakesTheLastHumanAndGptTurns() throws IOException {
        AudioQa q = Dataset.load(Fixtures.audioSkills(dir, "audioskills.json")).byId().get("musicbench_77");
        assertEquals("<sound>\nWhat is the tempo of this piece?\n(A) Lento\n(B) Vivace\n(C) Andante\n(D) Adagio", q.question());
        assertEquals("What is the tempo of this piece?\n(A) Lento\n(B) Vivace\n(C) Andante\n(D) Adagio", q.cleanQuestion());
        assertEquals("(B) Vivace", q.answer());
        assertEquals(1, q.answerIndex());
        assertEquals("musicbench", q.tag("dataset"));
    }

    @Test
    void jsonArrayAndJsonlLoadTheSameRecords() throws IOException {
        Dataset array = Dataset.load(Fixtures.audioSkills(dir, "audioskills.json"));
        Dataset lines = Dataset.load(Fixtures.copy("audioskills.jsonl", dir));
        assertEquals(array.items(), lines.items());
    }

    @Test
    void badRecordsFailTheLoadNamingFileRecordAndField() throws IOException {
        Fixtures.wav(dir.resolve("good_1.wav"));
        Path file = Fixtures.copy("bad.jsonl", dir);
        var e = assertThrows(DataException.class, () -> Dataset.load(file));
        // every bad record, not only the first: one header line, then one line per record in file order
        String[] lines = e.getMessage().split("\n");
        assertEquals(5, lines.length, e.getMessage());
        assertTrue(lines[0].startsWith(file + ": 4 bad records of 6"), e.getMessage());
        assertTrue(lines[1].startsWith("  " + file + ":2: record 'no_answer' (#1): field 'answer'"), e.getMessage());
        assertTrue(lines[2].contains(file + ":3") && lines[2].contains("malformed JSON"), e.getMessage());
        assertTrue(lines[3].contains("'not_a_choice'"), e.getMessage());
    }

    @Test
    void skipBadRecordsWarnsOncePerRecordAndCountsThem() throws IOException {
        Fixtures.wav(dir.resolve("good_1.wav"));
        Path file = Fixtures.copy("bad.jsonl", dir);
        var warnings = new ArrayList<String>();
        Dataset d = Dataset.load(file, LoadOptions.defaults().withSkipBadRecords(true).withWarnings(warnings::add));
        assertEquals(List.of("good_1", "good_2"), d.items().stream().map(AudioQa::id).toList());
        assertEquals(4, d.skipped());
        assertEquals(5, warnings.size(), String.join("\n", warnings));
        assertTrue(warnings.get(0).contains("'no_answer'") && warnings.get(0).contains("field 'answer'"), warnings.get(0));
        assertTrue(warnings.get(1).contains(file + ":3") && warnings.get(1).contains("malformed JSON"), warnings.get(1));
        assertTrue(warnings.get(2).contains("'not_a_choice'") && warnings.get(2).contains("'Third' is none of the choices"),
                warnings.get(2));
        assertTrue(warnings.get(3).contains("'no_audio'") && warnings.get(3).contains("field 'sound'")
                && warnings.get(3).contains("missing.wav does not exist"), warnings.get(3));
        assertTrue(warnings.get(4).contains("skipped 4 bad record(s) of 6"), warnings.get(4));
    }

    @Test
    void malformedJsonArrayFailsWithItsLine() throws IOException {
        Path file = dir.resolve("broken.json");
        Files.writeString(file, "[\n  {\"id\": \"a\",\n   \"question\" \"x\"}\n]");
        var e = assertThrows(DataException.class,
                () -> Dataset.load(file, LoadOptions.defaults().withSkipBadRecords(true)));
        assertTrue(e.getMessage().startsWith(file + ": malformed JSON at line 3"), e.getMessage());
    }

    @Test
    void duplicatedIdIsAnError() throws IOException {
        Path file = dir.resolve("dup.jsonl");
        String rec = "{\"id\":\"same\",\"sound\":\"a.wav\",\"question\":\"Q\\n(A) x\\n(B) y\",\"answer\":\"x\"}\n";
        Files.writeString(file, rec + rec);
        var e = assertThrows(DataException.class, () -> Dataset.load(file, LoadOptions.defaults().withCheckAudio(false)));
        assertTrue(e.getMessage().contains("record 'same' (#1): field 'id': duplicated id, first seen in record #0"), e.getMessage());
    }

    @Test
    void answerWhoseLetterAndTextDisagreeIsAnError() throws IOException {
        Path file = dir.resolve("contra.jsonl");
        Files.writeString(file, "{\"id\":\"c\",\"sound\":\"a.wav\",\"question\":\"Q\\n(A) x\\n(B) y\",\"answer\":\"(A) y\"}\n");
        var e = assertThrows(DataException.class, () -> Dataset.load(file, LoadOptions.defaults().withCheckAudio(false)));
        assertTrue(e.getMessage().contains("field 'answer'") && e.getMessage().contains("by letter and another by text"),
                e.getMessage());
    }

    @Test
    void recordWithoutChoicesIsAnError() throws IOException {
        Path file = dir.resolve("free.jsonl");
        Files.writeString(file, "{\"id\":\"f\",\"sound\":\"a.wav\",\"question\":\"How many barks?\",\"answer\":\"Three\"}\n");
        var e = assertThrows(DataException.class, () -> Dataset.load(file, LoadOptions.defaults().withCheckAudio(false)));
        assertTrue(e.getMessage().contains("record 'f' (#0): field 'choices'"), e.getMessage());
    }

    @Test
    void readIdsNeedsNeitherAudioNorValidAnswers() throws IOException {
        Path file = Fixtures.copy("bad.jsonl", dir);
        Files.write(file, Files.readAllLines(file).stream().filter(l -> !l.contains("broken")).toList());
        assertEquals(List.of("good_1", "no_answer", "not_a_choice", "no_audio", "good_2"), Dataset.readIds(file));
    }

    @Test
    void optionLikeTextInAQuestionWithAChoicesFieldIsJustText() throws IOException {
        Path file = dir.resolve("odd.json");
        Files.writeString(file, "[{\"id\":\"o\",\"audio_path\":\"o.wav\",\"question\":\"Is it (B) or not?\\n(B) as in Bravo\","
                + "\"choices\":[\"Yes\",\"No\"],\"answer\":\"No\"}]");
        AudioQa q = Dataset.load(file, LoadOptions.defaults().withCheckAudio(false)).items().getFirst();
        assertEquals(List.of("Yes", "No"), q.choices());
        assertFalse(q.choicesInQuestion());
        assertEquals(1, q.answerIndex());
    }

    @Test
    void withoutRequiredAnswersBadAnswersAreKeptUnscoredWithAWarning() throws IOException {
        Fixtures.wav(dir.resolve("good_1.wav"));
        Path file = Fixtures.copy("bad.jsonl", dir);
        var warnings = new ArrayList<String>();
        Dataset d = Dataset.load(file, LoadOptions.defaults().withSkipBadRecords(true).withRequireAnswers(false)
                .withWarnings(warnings::add));
        assertEquals(List.of("good_1", "no_answer", "not_a_choice", "good_2"), d.items().stream().map(AudioQa::id).toList());
        assertEquals(List.of(true, false, false, true), d.items().stream().map(AudioQa::scored).toList());
        assertEquals(2, d.skipped(), "malformed JSON and missing audio are still bad");
        assertEquals(2, warnings.stream().filter(w -> w.startsWith("warning: kept without a ground truth")).count(),
                String.join("\n", warnings));
        assertThrows(IllegalStateException.class, () -> d.items().get(1).answerChoice());
    }
}
