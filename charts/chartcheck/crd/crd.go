// Package crd mirrors the fields of the custom resources the Hourglass chart
// renders — spark-operator's SparkApplication (sparkoperator.k8s.io/v1beta2)
// and the Prometheus Operator's ServiceMonitor and PrometheusRule
// (monitoring.coreos.com/v1) — with their JSON names and types as in the
// operators' API definitions, so manifests decode strictly: a field the chart
// uses that the CRD does not define, or one of the wrong type, fails. Only the
// fields the chart uses are mirrored; add one here when the chart starts using it.
package crd

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SparkApplication is sparkoperator.k8s.io/v1beta2 SparkApplication.
type SparkApplication struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              SparkApplicationSpec `json:"spec"`
}

type SparkApplicationSpec struct {
	Type                string            `json:"type"` // Java, Scala, Python, R
	PythonVersion       *string           `json:"pythonVersion,omitempty"`
	Mode                string            `json:"mode,omitempty"` // cluster, client
	Image               *string           `json:"image,omitempty"`
	ImagePullPolicy     *string           `json:"imagePullPolicy,omitempty"`
	ImagePullSecrets    []string          `json:"imagePullSecrets,omitempty"`
	MainApplicationFile *string           `json:"mainApplicationFile,omitempty"`
	Arguments           []string          `json:"arguments,omitempty"`
	SparkConf           map[string]string `json:"sparkConf,omitempty"`
	HadoopConf          map[string]string `json:"hadoopConf,omitempty"`
	Volumes             []corev1.Volume   `json:"volumes,omitempty"`
	Driver              DriverSpec        `json:"driver"`
	Executor            ExecutorSpec      `json:"executor"`
	RestartPolicy       RestartPolicy     `json:"restartPolicy,omitempty"`
	SparkVersion        string            `json:"sparkVersion"`
}

type RestartPolicy struct {
	Type                             string `json:"type,omitempty"` // Never, Always, OnFailure
	OnSubmissionFailureRetries       *int32 `json:"onSubmissionFailureRetries,omitempty"`
	OnFailureRetries                 *int32 `json:"onFailureRetries,omitempty"`
	OnSubmissionFailureRetryInterval *int64 `json:"onSubmissionFailureRetryInterval,omitempty"`
	OnFailureRetryInterval           *int64 `json:"onFailureRetryInterval,omitempty"`
}

// SparkPodSpec holds what driver and executor share.
type SparkPodSpec struct {
	Cores           *int32                  `json:"cores,omitempty"`
	Memory          *string                 `json:"memory,omitempty"`
	Env             []corev1.EnvVar         `json:"env,omitempty"`
	Labels          map[string]string       `json:"labels,omitempty"`
	Annotations     map[string]string       `json:"annotations,omitempty"`
	VolumeMounts    []corev1.VolumeMount    `json:"volumeMounts,omitempty"`
	ServiceAccount  *string                 `json:"serviceAccount,omitempty"`
	InitContainers  []corev1.Container      `json:"initContainers,omitempty"`
	NodeSelector    map[string]string       `json:"nodeSelector,omitempty"`
	Tolerations     []corev1.Toleration     `json:"tolerations,omitempty"`
	SecurityContext *corev1.SecurityContext `json:"securityContext,omitempty"`
}

type DriverSpec struct {
	SparkPodSpec `json:",inline"`
	CoreLimit    *string `json:"coreLimit,omitempty"`
}

type ExecutorSpec struct {
	SparkPodSpec `json:",inline"`
	Instances    *int32 `json:"instances,omitempty"`
}

// ServiceMonitor is monitoring.coreos.com/v1 ServiceMonitor.
type ServiceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              ServiceMonitorSpec `json:"spec"`
}

type ServiceMonitorSpec struct {
	JobLabel          string               `json:"jobLabel,omitempty"`
	Endpoints         []Endpoint           `json:"endpoints"`
	Selector          metav1.LabelSelector `json:"selector"`
	NamespaceSelector NamespaceSelector    `json:"namespaceSelector,omitempty"`
}

type Endpoint struct {
	Port     string `json:"port,omitempty"`
	Path     string `json:"path,omitempty"`
	Scheme   string `json:"scheme,omitempty"`
	Interval string `json:"interval,omitempty"`
}

type NamespaceSelector struct {
	Any        bool     `json:"any,omitempty"`
	MatchNames []string `json:"matchNames,omitempty"`
}

// PrometheusRule is monitoring.coreos.com/v1 PrometheusRule.
type PrometheusRule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              PrometheusRuleSpec `json:"spec"`
}

type PrometheusRuleSpec struct {
	Groups []RuleGroup `json:"groups,omitempty"`
}

type RuleGroup struct {
	Name     string `json:"name"`
	Interval string `json:"interval,omitempty"`
	Rules    []Rule `json:"rules"`
}

type Rule struct {
	Record      string            `json:"record,omitempty"`
	Alert       string            `json:"alert,omitempty"`
	Expr        string            `json:"expr"`
	For         string            `json:"for,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// AlertmanagerConfig is monitoring.coreos.com/v1alpha1 AlertmanagerConfig.
type AlertmanagerConfig struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              AlertmanagerConfigSpec `json:"spec"`
}

type AlertmanagerConfigSpec struct {
	Route        *AMRoute        `json:"route,omitempty"`
	Receivers    []AMReceiver    `json:"receivers,omitempty"`
	InhibitRules []AMInhibitRule `json:"inhibitRules,omitempty"`
}

type AMRoute struct {
	Receiver       string   `json:"receiver,omitempty"`
	GroupBy        []string `json:"groupBy,omitempty"`
	GroupWait      string   `json:"groupWait,omitempty"`
	GroupInterval  string   `json:"groupInterval,omitempty"`
	RepeatInterval string   `json:"repeatInterval,omitempty"`
}

type AMReceiver struct {
	Name           string            `json:"name"`
	WebhookConfigs []AMWebhookConfig `json:"webhookConfigs,omitempty"`
}

type AMWebhookConfig struct {
	URL          *string                   `json:"url,omitempty"`
	URLSecret    *corev1.SecretKeySelector `json:"urlSecret,omitempty"`
	SendResolved *bool                     `json:"sendResolved,omitempty"`
}

type AMInhibitRule struct {
	SourceMatch []AMMatcher `json:"sourceMatch,omitempty"`
	TargetMatch []AMMatcher `json:"targetMatch,omitempty"`
	Equal       []string    `json:"equal,omitempty"`
}

// AMMatcher: matchType is one of = != =~ !~.
type AMMatcher struct {
	Name      string `json:"name"`
	Value     string `json:"value,omitempty"`
	MatchType string `json:"matchType,omitempty"`
}
