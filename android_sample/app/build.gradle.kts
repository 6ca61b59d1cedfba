// The sample app: classifies a bundled picture or one from the gallery with the SDK module.
plugins {
    alias(libs.plugins.android.application)
}

android {
    namespace = "com.example.mobilegen.demo.app"
    compileSdk = 35

    defaultConfig {
        applicationId = "com.example.mobilegen.demo.app"
        minSdk = 24
        targetSdk = 35
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
}
