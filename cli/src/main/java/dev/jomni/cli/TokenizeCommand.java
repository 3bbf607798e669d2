package dev.jomni.cli;

import dev.jomni.omni.text.Tokenizer;
import java.nio.file.Path;
import java.util.StringJoiner;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code omni tokenize --tokenizer DIR TEXT}: the ids of TEXT as a JSON array, added tokens in the text matched. */
@Command(name = "tokenize", mixinStandardHelpOptions = true,
        description = "Print the token ids of TEXT as a JSON array (added tokens such as <|im_start|> in the text are matched; no BOS/EOS is added).")
final class TokenizeCommand implements Callable<Integer> {
    @Option(names = "--tokenizer", required = true, paramLabel = "DIR",
            description = "Folder with tokenizer.json, tokenizer.json.gz or vocab.json + merges.txt + tokenizer_config.json (or tokenizer.json itself).")
    Path tokenizer;

    @Parameters(index = "0", paramLabel = "TEXT", description = "The text to tokenize.")
    String text;

    @Override
    public Integer call() {
        var joiner = new StringJoiner(", ", "[", "]");
        for (int id : Tokenizer.load(tokenizer).encode(text)) joiner.add(Integer.toString(id));
        System.out.println(joiner);
        return 0;
    }
}
