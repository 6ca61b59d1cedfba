// The sample app: classifies a bundled picture or one from the Photo Picker with the SDK module.
plugins {
    alias(libs.plugins.android.application)
}

android {
    namespace = "com.example.mobilegen.demo.app"
    // SDK levels and library versions: gradle/libs.versions.toml (the README says why).
    compileSdk = libs.versions.compileSdk.get().toInt()

    defaultConfig {
        applicationId = "com.example.mobilegen.demo.app"
        minSdk = libs.versions.minSdk.get().toInt()
        targetSdk = libs.versions.targetSdk.get().toInt()
        versionCode = 1
        versionName = "1.0"
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_11
        targetCompatibility = JavaVersion.VERSION_11
    }
}

dependencies {
    implementation(project(":sdk"))
    // ComponentActivity and the Activity Result API: the Photo Picker.
    implementation(libs.androidx.activity)
    // EXIF orientation of picked photos, the same on every API level.
    implementation(libs.androidx.exifinterface)
}
