package com.example.mobilegen.demo.app;

import android.app.Activity;
import android.content.Intent;
import android.graphics.Bitmap;
import android.graphics.BitmapFactory;
import android.net.Uri;
import android.os.Bundle;
import android.widget.Button;
import android.widget.ImageView;
import android.widget.Switch;
import android.widget.TextView;
import java.io.IOException;
import java.io.InputStream;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import com.example.mobilegen.demo.Classifier;
import com.example.mobilegen.demo.MobilegenException;
import com.example.mobilegen.demo.ModelInfo;
import com.example.mobilegen.demo.Recognition;

/**
 * Shows a picture (the bundled sample, or one picked from the gallery), its top-5 classes with
 * scores and the inference time; the switch moves inference between the GPU and the CPU.
 */
public class MainActivity extends Activity {
    private static final int PICK_IMAGE = 1;
    private static final String SAMPLE_ASSET = "sample.png";
    private static final int TOP_K = 5;
    // Gallery pictures are decoded at no less than this many times the model input: enough for
    // the resize, without holding a full-resolution photo in memory.
    private static final int DECODE_MARGIN = 2;

    // Every Classifier call runs on this thread, in order, off the UI thread.
    private final ExecutorService worker = Executors.newSingleThreadExecutor();
    private Classifier classifier;          // worker thread only
    private Classifier.Backend classifierBackend;  // what `classifier` was created with

    private ImageView image;
    private TextView results;
    private Switch gpu;
    private Bitmap picture;

    @Override
    protected void onCreate(Bundle savedInstanceState) {
        super.onCreate(savedInstanceState);
        setContentView(R.layout.activity_main);
        image = findViewById(R.id.image);
        results = findViewById(R.id.results);
        gpu = findViewById(R.id.gpu);
        Button pick = findViewById(R.id.pick);
        pick.setOnClickListener(view -> pickImage());
        gpu.setOnCheckedChangeListener((view, checked) -> classify());

        try (InputStream in = getAssets().open(SAMPLE_ASSET)) {
            show(BitmapFactory.decodeStream(in));
        } catch (IOException e) {
            results.setText("Cannot open " + SAMPLE_ASSET + ": " + e.getMessage());
        }
    }

    @Override
    protected void onDestroy() {
        worker.execute(this::closeClassifier);
        worker.shutdown();
        super.onDestroy();
    }

    private void pickImage() {
        Intent intent = new Intent(Intent.ACTION_GET_CONTENT);
        intent.setType("image/*");
        intent.addCategory(Intent.CATEGORY_OPENABLE);
        startActivityForResult(intent, PICK_IMAGE);
    }

    @Override
    protected void onActivityResult(int requestCode, int resultCode, Intent data) {
        super.onActivityResult(requestCode, resultCode, data);
        if (requestCode != PICK_IMAGE || resultCode != RESULT_OK || data == null || data.getData() == null) {
            return;
        }
        try {
            Bitmap picked = decodeSampled(data.getData());
            if (picked == null) {
                results.setText("Not a picture: " + data.getData());
                return;
            }
            show(picked);
        } catch (IOException e) {
            results.setText("Cannot open " + data.getData() + ": " + e.getMessage());
        }
    }

    private Bitmap decodeSampled(Uri uri) throws IOException {
        BitmapFactory.Options bounds = new BitmapFactory.Options();
        bounds.inJustDecodeBounds = true;
        try (InputStream in = getContentResolver().openInputStream(uri)) {
            BitmapFactory.decodeStream(in, null, bounds);
        }
        BitmapFactory.Options options = new BitmapFactory.Options();
        options.inSampleSize = 1;
        while (bounds.outWidth / (2 * options.inSampleSize) >= DECODE_MARGIN * ModelInfo.INPUT_WIDTH
                && bounds.outHeight / (2 * options.inSampleSize) >= DECODE_MARGIN * ModelInfo.INPUT_HEIGHT) {
            options.inSampleSize *= 2;
        }
        try (InputStream in = getContentResolver().openInputStream(uri)) {
            return BitmapFactory.decodeStream(in, null, options);
        }
    }

    private void show(Bitmap bitmap) {
        picture = bitmap;
        image.setImageBitmap(bitmap);
        classify();
    }

    private void classify() {
        if (picture == null) {
            return;
        }
        final Bitmap input = picture;
        // AUTO: the GPU when the device has OpenGL ES 3.1 compute; the result names the one used.
        final Classifier.Backend backend = gpu.isChecked() ? Classifier.Backend.AUTO : Classifier.Backend.CPU;
        worker.execute(() -> {
            String text = classifyOnWorker(input, backend);
            runOnUiThread(() -> results.setText(text));
        });
    }

    private String classifyOnWorker(Bitmap input, Classifier.Backend backend) {
        try {
            if (classifier == null || classifierBackend != backend) {
                closeClassifier();
                classifier = Classifier.create(this, new Classifier.Options().setBackend(backend).setTopK(TOP_K));
                classifierBackend = backend;
            }
            List<Recognition> top = classifier.classify(input);
            StringBuilder text = new StringBuilder(String.format(
                    Locale.ROOT, "%s, %.1f ms%n%n", classifier.backend(), classifier.lastInferenceMillis()));
            for (Recognition r : top) {
                text.append(String.format(Locale.ROOT, "%.4f  %s%n", r.getScore(), r.getLabel()));
            }
            return text.toString();
        } catch (MobilegenException e) {
            return e.getMessage();
        }
    }

    private void closeClassifier() {
        if (classifier != null) {
            classifier.close();
            classifier = null;
        }
    }
}
